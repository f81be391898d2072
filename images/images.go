package images

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/images/content"
	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Service pulls, stores and looks up images.
type Service struct {
	hooks Hooks
	// hostsDir is the registry configuration directory (hosts.go).
	hostsDir  string
	creds     map[string]Auth
	pinned    []string
	db        *store.DB
	content   *content.Store
	snapshots *snapshot.Snapshotter
	log       *slog.Logger
	// lazyServer is berth-lazyfs, when pulls mount eStargz layers lazily.
	lazyServer string
	// layerDiskFraction: see SetLayerDiskFraction.
	layerDiskFraction float64
	// pullMu serialises the metadata step of pulls (tags move between images).
	pullMu sync.Mutex
	// inflight deduplicates concurrent fetches of one layer (by chain ID):
	// the second pull waits for the first's result instead of downloading again.
	inflightMu sync.Mutex
	inflight   map[digest.Digest]*layerFetch
	// gcMu: pulls hold it shared from their first look at the layers to
	// their record; garbage collection holds it alone, so it never deletes
	// a layer a pull has found and is about to record.
	gcMu sync.RWMutex
}

// SetRegistryConfigDir sets the directory of per-registry hosts.toml files.
func (s *Service) SetRegistryConfigDir(dir string) { s.hostsDir = dir }

// SetLayerDiskFraction bounds each layer's unpacked files to f of the space
// free when its unpack starts (0: no bound).
func (s *Service) SetLayerDiskFraction(f float64) { s.layerDiskFraction = f }

// Hooks hear of pulls and garbage collection (metrics); unset ones hear nothing.
type Hooks struct {
	Pulled func(bytes int64, took time.Duration, err error)
	Freed  func(bytes int64)
}

// SetHooks sets the hooks.
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// SetCredentials sets the credentials for registry hosts (host[:port]),
// used where a pull brings none of its own.
func (s *Service) SetCredentials(creds map[string]Auth) { s.creds = creds }

// SetPinned names the images (references, normalised) that are pinned: the
// kubelet's image garbage collection never removes them.
func (s *Service) SetPinned(refs []string) error {
	s.pinned = nil
	for _, r := range refs {
		n, err := Normalize(r)
		if err != nil {
			return fmt.Errorf("pinned image: %w", err)
		}
		s.pinned = append(s.pinned, n.String())
	}
	return nil
}

// New opens the image service over root/content and root/snapshots.
func New(db *store.DB, root string, log *slog.Logger) (*Service, error) {
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.New(filepath.Join(root, "snapshots"))
	if err != nil {
		return nil, err
	}
	return &Service{db: db, content: cs, snapshots: sn, log: log, inflight: map[digest.Digest]*layerFetch{}}, nil
}

// Snapshots gives container services the snapshotter, to mount root filesystems.
func (s *Service) Snapshots() *snapshot.Snapshotter { return s.snapshots }

// Blobs is the content store the images' blobs are in.
func (s *Service) Blobs() *content.Store { return s.content }

// Auth is a registry credential, as CRI's AuthConfig carries it.
type Auth struct {
	Username      string `toml:"username"`
	Password      string `toml:"password"`
	Auth          string `toml:"auth"`
	IdentityToken string `toml:"identity_token"`
	RegistryToken string `toml:"registry_token"`
}

// Normalize turns a user's image reference into its full form
// (busybox → docker.io/library/busybox:latest), as Docker does.
func Normalize(ref string) (reference.Named, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w: %v", ref, errdefs.ErrInvalidArgument, err)
	}
	return n, nil
}
