package dockerapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// buildImage is `docker build` (the classic builder) and the SDKs' build:
// the context as a tar body, the progress as a JSON stream.
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request) {
	switch v := r.URL.Query().Get("version"); v {
	case "2":
		s.buildKitBuild(w, r)
		return
	case "", "1":
	default:
		writeError(w, fmt.Errorf("invalid builder version %q: 1 (classic) or 2 (BuildKit): %w", v, errdefs.ErrInvalidArgument))
		return
	}
	if s.builder == nil {
		writeError(w, fmt.Errorf("image builds are not enabled: %w", errdefs.ErrUnimplemented))
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
	dir, remove, err := builder.UnpackContext(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	defer remove()
	o.ContextDir = dir
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := &jsonStream{w: w}
	quiet := boolParam(r, "q")
	o.Out = out
	if quiet {
		o.Out = io.Discard
	}
	id, err := s.builder.Build(r.Context(), o)
	if err != nil {
		out.sendError(err)
		return
	}
	out.send(map[string]any{"aux": map[string]string{"ID": id}})
	if quiet {
		out.send(map[string]string{"stream": id + "\n"})
	}
}
