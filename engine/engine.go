package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/sandbox"
)

// Owner marks the pods (and their containers) of Docker containers: the
// CRI never lists them.
const Owner = "docker"

// Engine is Docker's engine on Berth's services. Its own files (networks,
// attachments, stop marks, volumes, the containers' logs) live under one
// directory.
type Engine struct {
	containers *containers.Service
	sandboxes  *sandbox.Service
	images     *images.Service
	log        *slog.Logger
	// dir holds the engine's files; logDir the containers' logs (CRI
	// format), one directory a pod; volumeDir the local volumes.
	dir, logDir, volumeDir string
	// initBin is bound into a container as /sbin/docker-init for --init.
	initBin string
	// netMu serialises changes to the networks and their members.
	netMu  sync.Mutex
	execs  execs
	terms  terminals
	health healths
	events eventLog
	exits  exitCodes
	stops  stopMarks
	ports  ports
}

// New returns the engine; its files live under dir.
func New(c *containers.Service, sb *sandbox.Service, img *images.Service, dir string, log *slog.Logger) *Engine {
	return &Engine{containers: c, sandboxes: sb, images: img, log: log, dir: dir,
		logDir: filepath.Join(dir, "logs"), volumeDir: filepath.Join(dir, "volumes"),
		stops: stopMarks{filepath.Join(dir, "stopped")}}
}

// SetInit names the binary `docker run --init` binds into the container as
// /sbin/docker-init (berth-runtime, which is an init when called so).
func (e *Engine) SetInit(path string) { e.initBin = path }

// validName is Docker's rule for container and network names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Lookup finds a Docker container by name (with or without its "/"), full
// ID or unique ID prefix.
func (e *Engine) Lookup(idOrName string) (store.Container, error) {
	all, err := e.containers.ListOwned(Owner)
	if err != nil {
		return store.Container{}, err
	}
	name := strings.TrimPrefix(idOrName, "/")
	var match []store.Container
	for _, c := range all {
		if c.ID == idOrName || c.Name == name {
			return c, nil
		}
		if strings.HasPrefix(c.ID, idOrName) {
			match = append(match, c)
		}
	}
	if len(match) == 1 && idOrName != "" {
		return match[0], nil
	}
	return store.Container{}, fmt.Errorf("No such container: %s: %w", idOrName, errdefs.ErrNotFound)
}

// Containers lists every Docker container.
func (e *Engine) Containers() ([]store.Container, error) { return e.containers.ListOwned(Owner) }

// randomID names an anonymous volume or a network, as dockerd does: 64 hex digits.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// randomName is a name for a container created without one.
func randomName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "berth_" + hex.EncodeToString(b[:])
}
