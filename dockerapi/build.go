package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/moby/go-archive"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// SetBuilder gives the front end its image builder (POST /build).
func (s *Server) SetBuilder(b *builder.Builder) { s.builder = b }

// buildImage is `docker build` (the classic builder) and the SDKs' build:
// the context as a tar body, the progress as a JSON stream.
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request) {
	if s.builder == nil {
		writeError(w, fmt.Errorf("image builds are not enabled: %w", errdefs.ErrUnimplemented))
		return
	}
	if r.URL.Query().Get("version") == "2" {
		writeError(w, fmt.Errorf("BuildKit is not supported: build with DOCKER_BUILDKIT=0 (the classic builder): %w", errdefs.ErrUnimplemented))
		return
	}
	q := r.URL.Query()
	o := builder.Options{Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"), NoCache: boolParam(r, "nocache")}
	if ba := q.Get("buildargs"); ba != "" {
		if err := json.Unmarshal([]byte(ba), &o.BuildArgs); err != nil {
			writeError(w, fmt.Errorf("invalid buildargs %q: %w", ba, errdefs.ErrInvalidArgument))
			return
		}
	}
	dir, err := os.MkdirTemp("", "berth-build-context-")
	if err != nil {
		writeError(w, err)
		return
	}
	defer os.RemoveAll(dir)
	if err := archive.Untar(r.Body, dir, &archive.TarOptions{NoLchown: true}); err != nil {
		writeError(w, fmt.Errorf("the build context is not a readable tar: %v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	o.ContextDir = dir
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := &jsonStream{w: w}
	if !boolParam(r, "q") {
		o.Out = out
	} else {
		o.Out = discard{}
	}
	id, err := s.builder.Build(r.Context(), o)
	if err != nil {
		msg := strings.TrimSuffix(err.Error(), ": "+errdefs.ErrInvalidArgument.Error())
		out.send(map[string]any{"errorDetail": map[string]string{"message": msg}, "error": msg})
		return
	}
	out.send(map[string]any{"aux": map[string]string{"ID": id}})
	if boolParam(r, "q") {
		out.send(map[string]string{"stream": id + "\n"})
	}
}

// jsonStream sends each write as Docker's {"stream": ...} message.
type jsonStream struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (j *jsonStream) Write(p []byte) (int, error) {
	j.send(map[string]string{"stream": string(p)})
	return len(p), nil
}

func (j *jsonStream) send(v any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = json.NewEncoder(j.w).Encode(v)
	if f, ok := j.w.(http.Flusher); ok {
		f.Flush()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
