package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// The API versions served: the docker CLI negotiates down to MaxAPIVersion
// through /_ping; a request for a version outside the range is refused.
const (
	MaxAPIVersion = "1.50"
	MinAPIVersion = "1.24"
)

// Server is the Docker Engine API front end.
type Server struct {
	engine   *engine.Engine
	builder  *builder.Builder
	buildkit BuildKit
	log      *slog.Logger
	version  string
	mux      *http.ServeMux
}

// New returns the front end over e.
func New(e *engine.Engine, version string, log *slog.Logger) *Server {
	s := &Server{engine: e, log: log, version: version, mux: http.NewServeMux()}
	s.routeSystem()
	s.routeImages()
	s.routeContainers()
	s.routeExec()
	s.routeVolumes()
	s.routeEvents()
	s.routeNetworks()
	s.mux.HandleFunc("POST /build", s.buildImage)
	s.mux.HandleFunc("POST /grpc", s.buildkitGRPC)
	s.mux.HandleFunc("POST /session", s.buildkitSession)
	s.mux.HandleFunc("POST /build/prune", s.buildPrune)
	s.mux.HandleFunc("POST /build/cancel", s.buildCancel)
	return s
}

// SetBuilder gives the front end its image builder (POST /build).
func (s *Server) SetBuilder(b *builder.Builder) { s.builder = b }

var versionPrefix = regexp.MustCompile(`^/v(\d+)\.(\d+)(/.*)$`)

// ServeHTTP strips the /v1.xx prefix (refusing versions out of range) and
// routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		if !versionInRange(m[1], m[2]) {
			writeError(w, fmt.Errorf("client version %s.%s is not supported: this daemon serves API versions %s to %s: %w",
				m[1], m[2], MinAPIVersion, MaxAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		r.URL.Path = m[3]
		r.URL.RawPath = ""
		r = r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, [2]int{atoi(m[1]), atoi(m[2])}))
	}
	w.Header().Set("Api-Version", MaxAPIVersion)
	w.Header().Set("Server", "Berth/"+s.version)
	s.mux.ServeHTTP(w, r)
}

// apiVersionKey holds the version a request's path asked for.
type apiVersionKey struct{}

// apiBefore says whether r asked for an API version older than
// major.minor (a request without a version has the newest): where dockerd
// answers older clients otherwise.
func apiBefore(r *http.Request, major, minor int) bool {
	v, ok := r.Context().Value(apiVersionKey{}).([2]int)
	return ok && (v[0] < major || v[0] == major && v[1] < minor)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func versionInRange(major, minor string) bool {
	v := func(s string) (int, int) {
		a, b, _ := strings.Cut(s, ".")
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x, y
	}
	ma, mi := v(major + "." + minor)
	lo1, lo2 := v(MinAPIVersion)
	hi1, hi2 := v(MaxAPIVersion)
	return (ma > lo1 || ma == lo1 && mi >= lo2) && (ma < hi1 || ma == hi1 && mi <= hi2)
}

// writeError answers Docker's error JSON with the status the CLI expects:
// the one place errors become HTTP statuses.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, errdefs.ErrInvalidArgument):
		code = http.StatusBadRequest
	case errors.Is(err, errdefs.ErrAlreadyExists), errors.Is(err, errdefs.ErrFailedPrecondition):
		code = http.StatusConflict
	case errors.Is(err, errdefs.ErrUnimplemented):
		code = http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrResourceExhausted):
		code = http.StatusInsufficientStorage
	case errors.Is(err, errdefs.ErrUnauthenticated):
		code = http.StatusUnauthorized
	}
	writeJSON(w, code, map[string]string{"message": errorMessage(err)})
}

// errorMessage is err as the CLI prints it: without the kind Berth's
// errors carry at their end for errors.Is.
func errorMessage(err error) string {
	msg := err.Error()
	for _, kind := range []error{errdefs.ErrNotFound, errdefs.ErrInvalidArgument, errdefs.ErrAlreadyExists,
		errdefs.ErrFailedPrecondition, errdefs.ErrUnimplemented, errdefs.ErrResourceExhausted, errdefs.ErrUnauthenticated} {
		msg = strings.TrimSuffix(msg, ": "+kind.Error())
	}
	return msg
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// answer is the end of most handlers: the error as Docker's error JSON, or
// the status alone (304 for a start or stop that found nothing to do).
func answer(w http.ResponseWriter, err error, status int) {
	if errors.Is(err, engine.ErrNotModified) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(status)
}
