package dockerapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/builder/buildkit"
	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// BuildKit is the builder behind /grpc and /session (buildx's docker
// driver, the docker CLI's default build): it takes over the connections.
type BuildKit interface {
	ServeConn(ctx context.Context, conn net.Conn) error
	HandleSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error
	DiskUsage(ctx context.Context) ([]buildkit.CacheRecord, error)
	Prune(ctx context.Context, o buildkit.PruneOptions) ([]buildkit.CacheRecord, error)
	Build(ctx context.Context, o buildkit.BuildOptions) (string, error)
	Upload(ctx context.Context, buildID string, body io.Reader) error
	Cancel(buildID string)
}

// SetBuildKit serves BuildKit on /grpc and /session, and says so on /_ping.
func (s *Server) SetBuildKit(b BuildKit) { s.buildkit = b }

// buildkitGRPC is /grpc: dockerd's way to BuildKit's control API, the
// connection upgraded to HTTP/2 without TLS (h2c) and handed over.
func (s *Server) buildkitGRPC(w http.ResponseWriter, r *http.Request) {
	if s.buildkit == nil {
		writeError(w, fmt.Errorf("BuildKit is off on this daemon: build with DOCKER_BUILDKIT=0 (the classic builder): %w", errdefs.ErrUnimplemented))
		return
	}
	if r.Header.Get("Upgrade") != "h2c" {
		writeError(w, fmt.Errorf("/grpc needs an Upgrade: h2c request: %w", errdefs.ErrInvalidArgument))
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, fmt.Errorf("/grpc: %w", err))
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	if err := s.buildkit.ServeConn(r.Context(), bufferedConn{Conn: conn, r: buf.Reader}); err != nil {
		s.log.Warn("BuildKit", "error", err)
	}
}

// buildkitSession is /session: the client's session (its build context,
// secrets, SSH agent, outputs), which BuildKit calls back through.
func (s *Server) buildkitSession(w http.ResponseWriter, r *http.Request) {
	if s.buildkit == nil {
		writeError(w, fmt.Errorf("BuildKit is off on this daemon: %w", errdefs.ErrUnimplemented))
		return
	}
	if err := s.buildkit.HandleSession(r.Context(), w, r); err != nil {
		s.log.Warn("BuildKit session", "error", err)
	}
}

// buildKitBuild is POST /build?version=2: the docker CLI 18.09–22's
// BuildKit build (its context in its session, or uploaded by a request of
// its own), the SDKs' Version "2" (the context in the body). The progress
// goes as dockerd sends it: BuildKit's status, protobuf in base64, in
// "moby.buildkit.trace" messages, and the image's ID in "moby.image.id".
func (s *Server) buildKitBuild(w http.ResponseWriter, r *http.Request) {
	if s.buildkit == nil {
		writeError(w, fmt.Errorf("BuildKit is off on this daemon: build with DOCKER_BUILDKIT=0 (the classic builder): %w", errdefs.ErrUnimplemented))
		return
	}
	o, err := buildKitOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if id, ok := strings.CutPrefix(o.BuildID, "upload-request:"); ok {
		if err := s.buildkit.Upload(r.Context(), id, r.Body); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := &jsonStream{w: w}
	o.Context = r.Body
	o.Trace = func(b []byte) error {
		out.send(map[string]any{"id": "moby.buildkit.trace", "aux": base64.StdEncoding.EncodeToString(b)})
		return nil
	}
	id, err := s.buildkit.Build(r.Context(), o)
	if err != nil {
		out.sendError(err)
		return
	}
	if id != "" {
		out.send(map[string]any{"id": "moby.image.id", "aux": map[string]string{"ID": id}})
	}
}

// buildKitOptions reads /build's parameters as dockerd does for BuildKit.
func buildKitOptions(r *http.Request) (buildkit.BuildOptions, error) {
	q := r.URL.Query()
	o := buildkit.BuildOptions{Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"), NoCache: boolParam(r, "nocache"),
		Pull: boolParam(r, "pull"), Platform: q.Get("platform"), NetworkMode: q.Get("networkmode"), ExtraHosts: q["extrahosts"],
		SessionID: q.Get("session"), Remote: q.Get("remote"), BuildID: q.Get("buildid")}
	for _, p := range []struct {
		name string
		dst  any
	}{{"buildargs", &o.BuildArgs}, {"labels", &o.Labels}, {"cachefrom", &o.CacheFrom}, {"outputs", &o.Outputs}} {
		if v := q.Get(p.name); v != "" {
			if err := json.Unmarshal([]byte(v), p.dst); err != nil {
				return o, fmt.Errorf("invalid %s %q: %v: %w", p.name, v, err, errdefs.ErrInvalidArgument)
			}
		}
	}
	if v := q.Get("shmsize"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return o, fmt.Errorf("shmsize=%q is not a number of bytes: %w", v, errdefs.ErrInvalidArgument)
		}
		o.ShmSize = n
	}
	return o, o.Validate()
}

// buildCancel is POST /build/cancel: the docker CLI's Ctrl-C of a build.
func (s *Server) buildCancel(w http.ResponseWriter, r *http.Request) {
	if s.buildkit != nil {
		s.buildkit.Cancel(r.URL.Query().Get("id"))
	}
	w.WriteHeader(http.StatusOK)
}

// bufferedConn reads first what the HTTP server had read past the request.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// buildPrune is `docker builder prune`: BuildKit's cache records no build
// uses go, within the bounds asked.
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) {
	if s.buildkit == nil {
		writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": []string{}, "SpaceReclaimed": 0})
		return
	}
	f, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	o := buildkit.PruneOptions{All: boolParam(r, "all")}
	// keep-storage is reserved-space's old name; the new one wins when both come.
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"keep-storage", &o.ReservedSpace}, {"reserved-space", &o.ReservedSpace}, {"max-used-space", &o.MaxUsedSpace}, {"min-free-space", &o.MinFreeSpace}} {
		name, dst := p.name, p.dst
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeError(w, fmt.Errorf("%s=%q is not a number of bytes: %w", name, v, errdefs.ErrInvalidArgument))
				return
			}
			*dst = n
		}
	}
	if o.Until, o.Filters, err = pruneFilters(f); err != nil {
		writeError(w, err)
		return
	}
	recs, err := s.buildkit.Prune(r.Context(), o)
	if err != nil {
		writeError(w, fmt.Errorf("prune the build cache: %w", err))
		return
	}
	ids, total := []string{}, int64(0)
	for _, c := range recs {
		ids = append(ids, c.ID)
		total += c.Size
	}
	writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": ids, "SpaceReclaimed": total})
}

// cacheFields are the build cache's fields `docker builder prune --filter`
// takes, as dockerd does.
var cacheFields = []string{"id", "parent", "type", "description", "inuse", "shared", "private"}

// pruneFilters turns Docker's prune filters into BuildKit's: until (or its
// old name unused-for) a duration or a time; the cache's fields one value
// each, id matched as a prefix, the others exactly, a bare one (inuse) true.
func pruneFilters(f engine.Filters) (time.Duration, []string, error) {
	var until time.Duration
	var out []string
	for k, vs := range f {
		switch {
		case k == "until" || k == "unused-for":
			if len(f["until"]) > 0 && len(f["unused-for"]) > 0 {
				return 0, nil, fmt.Errorf("filters until and unused-for are one: give one: %w", errdefs.ErrInvalidArgument)
			}
			if len(vs) != 1 {
				return 0, nil, fmt.Errorf("filter %s takes one value, not %d: %w", k, len(vs), errdefs.ErrInvalidArgument)
			}
			if d, err := time.ParseDuration(vs[0]); err == nil {
				until = d
				continue
			}
			t := unixParam(vs[0])
			if t.IsZero() {
				return 0, nil, fmt.Errorf("filter %s=%q is not a duration (24h, 10m) or a time: %w", k, vs[0], errdefs.ErrInvalidArgument)
			}
			until = time.Since(t)
		case slices.Contains(cacheFields, k):
			switch {
			case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
				out = append(out, k)
			case len(vs) > 1:
				return 0, nil, fmt.Errorf("filter %s takes one value, not %d: %w", k, len(vs), errdefs.ErrInvalidArgument)
			case k == "id":
				out = append(out, "id~="+strconv.Quote("^"+regexp.QuoteMeta(vs[0])))
			default:
				out = append(out, k+"=="+strconv.Quote(vs[0]))
			}
		default:
			return 0, nil, fmt.Errorf("invalid filter %q (until, %s): %w", k, strings.Join(cacheFields, ", "), errdefs.ErrInvalidArgument)
		}
	}
	slices.Sort(out)
	return until, out, nil
}

// buildCacheJSON is the BuildCache of /system/df, as dockerd writes it.
func (s *Server) buildCacheJSON(ctx context.Context) ([]map[string]any, error) {
	out := []map[string]any{}
	if s.buildkit == nil {
		return out, nil
	}
	recs, err := s.buildkit.DiskUsage(ctx)
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	for _, c := range recs {
		var parent string
		if len(c.Parents) > 0 {
			parent = c.Parents[0]
		}
		rec := map[string]any{"ID": c.ID, "Parent": parent, "Parents": nonNil(c.Parents), "Type": c.Type, "Description": c.Description,
			"InUse": c.InUse, "Shared": c.Shared, "Size": c.Size, "CreatedAt": c.CreatedAt, "UsageCount": c.UsageCount}
		if c.LastUsedAt != nil {
			rec["LastUsedAt"] = c.LastUsedAt
		}
		out = append(out, rec)
	}
	return out, nil
}
