package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox"
)

// The API versions served: the docker CLI negotiates down to MaxAPIVersion
// through /_ping; a request for a version outside the range is refused.
const (
	MaxAPIVersion = "1.50"
	MinAPIVersion = "1.24"
)

// Owner marks the pods (and their containers) of Docker containers.
const Owner = "docker"

// Server is the Docker Engine API front end.
type Server struct {
	containers *containers.Service
	sandboxes  *sandbox.Service
	images     *images.Service
	log        *slog.Logger
	version    string
	// logDir holds the containers' logs (CRI format), one directory a pod;
	// volumeDir the local volumes.
	logDir, volumeDir string
	execs             execs
	terms             terminals
	health            healths
	events            eventLog
	// dir holds the front end's own files; netMu serialises changes to
	// the networks kept there.
	dir   string
	netMu sync.Mutex
	// initBin is bound into a container as /sbin/docker-init for --init.
	initBin string
	builder *builder.Builder
	exits   exitCodes
	stops   stopMarks
	mux     *http.ServeMux
}

// New returns the front end; its containers' logs and its volumes live under dir.
func New(c *containers.Service, sb *sandbox.Service, img *images.Service, dir, version string, log *slog.Logger) *Server {
	s := &Server{containers: c, sandboxes: sb, images: img, log: log, version: version,
		logDir: filepath.Join(dir, "logs"), volumeDir: filepath.Join(dir, "volumes"), mux: http.NewServeMux(),
		stops: stopMarks{filepath.Join(dir, "stopped")}, dir: dir}
	s.routeSystem()
	s.routeImages()
	s.routeContainers()
	s.routeExec()
	s.routeVolumes()
	s.routeStats()
	s.routeEvents()
	s.routeNetworks()
	s.routeFiles()
	s.mux.HandleFunc("POST /build", s.buildImage)
	return s
}

// SetInit names the binary `docker run --init` binds into the container as
// /sbin/docker-init (berth-runtime, which is an init when called so).
func (s *Server) SetInit(path string) { s.initBin = path }

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
	}
	w.Header().Set("Api-Version", MaxAPIVersion)
	w.Header().Set("Server", "Berth/"+s.version)
	s.mux.ServeHTTP(w, r)
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
	// The CLI prints the message as it is: without the kind Berth's errors
	// carry at their end for errors.Is.
	msg := err.Error()
	for _, kind := range []error{errdefs.ErrNotFound, errdefs.ErrInvalidArgument, errdefs.ErrAlreadyExists,
		errdefs.ErrFailedPrecondition, errdefs.ErrUnimplemented, errdefs.ErrResourceExhausted, errdefs.ErrUnauthenticated} {
		msg = strings.TrimSuffix(msg, ": "+kind.Error())
	}
	writeJSON(w, code, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON request body; malformed JSON is a 400. Unknown
// fields are ignored, as dockerd ignores them: clients send newer fields.
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("malformed JSON in the request body: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || v == "true" || v == "True"
}
