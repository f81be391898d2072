package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/images/content"
	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/images/unpack"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Service pulls, stores and looks up images.
type Service struct {
	// hostsDir is the registry configuration directory (hosts.go).
	hostsDir  string
	creds     map[string]Auth
	pinned    []string
	db        *store.DB
	content   *content.Store
	snapshots *snapshot.Snapshotter
	log       *slog.Logger
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

// Progress is how far a pull has come, reported as layers download.
type Progress struct {
	Layer            digest.Digest // the compressed layer
	Done, Total      int64         // bytes of this layer
	AllDone, AllSize int64         // bytes of the whole pull (layers not already here)
	// Complete is set once the layer is stored and unpacked.
	Complete bool
}

// PullOptions are a pull's optional parts.
type PullOptions struct {
	Auth *Auth
	// Progress, if set, is called as bytes arrive (from several goroutines
	// in turn, never at once).
	Progress func(Progress)
}

// Pull fetches ref for this node's platform, unpacks it and records it.
func (s *Service) Pull(ctx context.Context, ref string, auth *Auth) (store.Image, error) {
	return s.PullWith(ctx, ref, PullOptions{Auth: auth})
}

// PullWith is Pull with progress reports.
func (s *Service) PullWith(ctx context.Context, ref string, o PullOptions) (store.Image, error) {
	auth := o.Auth
	named, err := Normalize(ref)
	if err != nil {
		return store.Image{}, err
	}
	hosts, err := hostsFor(s.hostsDir, reference.Domain(named))
	if err != nil {
		return store.Image{}, fmt.Errorf("pull %s: registry configuration: %w", named, err)
	}
	start := time.Now()
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	desc, err := s.resolve(ctx, named, hosts, auth)
	if err != nil {
		return store.Image{}, err
	}
	if desc.MediaType == types.DockerManifestSchema1 || desc.MediaType == types.DockerManifestSchema1Signed {
		return store.Image{}, fmt.Errorf("pull %s: the image has a Docker schema 1 manifest (%s), which is deprecated and not supported: push it again with a current client: %w",
			named, desc.MediaType, errdefs.ErrInvalidArgument)
	}
	img, err := desc.Image()
	if err != nil {
		return store.Image{}, fmt.Errorf("pull %s: %w", named, err)
	}
	repoDigest := named.Name() + "@" + desc.Digest.String()
	var tags []string
	if _, isDigest := named.(reference.Digested); !isDigest {
		tags = []string{named.String()}
	}
	rec, err := s.ingest(ctx, img, tags, []string{repoDigest}, newProgress(o.Progress))
	if err != nil {
		return store.Image{}, fmt.Errorf("pull %s: %w", named, err)
	}
	s.log.Info("pulled image", slog.String("image", named.String()), slog.String("id", rec.ID),
		slog.Int64("bytes", rec.Size), slog.Duration("took", time.Since(start)))
	return rec, nil
}

// ingest stores img's manifest, config and layers (unpacked), and records
// it under the given names. Call with gcMu held shared.
func (s *Service) ingest(ctx context.Context, img v1.Image, tags, repoDigests []string, prog *progress) (store.Image, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return store.Image{}, fmt.Errorf("manifest: %w", err)
	}
	manifestDigest := digest.FromBytes(rawManifest)
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return store.Image{}, fmt.Errorf("config: %w", err)
	}
	cfgDigest := digest.FromBytes(rawCfg)
	var cfg ocispec.Image
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return store.Image{}, fmt.Errorf("config %s: %w", cfgDigest, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return store.Image{}, err
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(layers) {
		return store.Image{}, fmt.Errorf("manifest %s has %d layers, config %d diff IDs", manifestDigest, len(layers), len(diffIDs))
	}
	chainIDs := ChainIDs(diffIDs)
	size := int64(len(rawCfg))
	blobs := []string{manifestDigest.String(), cfgDigest.String()}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return store.Image{}, err
		}
		size += n
		h, err := l.Digest()
		if err != nil {
			return store.Image{}, err
		}
		blobs = append(blobs, h.String())
	}
	if err := s.fetchLayers(ctx, layers, diffIDs, chainIDs, prog); err != nil {
		return store.Image{}, err
	}
	for d, b := range map[digest.Digest][]byte{cfgDigest: rawCfg, manifestDigest: rawManifest} {
		if err := s.content.Put(d, b); err != nil && !s.content.Has(d) {
			return store.Image{}, fmt.Errorf("store %s: %w", d, err)
		}
	}
	rec := store.Image{
		ID: cfgDigest.String(), Manifest: manifestDigest.String(), Layers: toStrings(diffIDs),
		ChainIDs: toStrings(chainIDs), Blobs: blobs, Size: size, CreatedAt: time.Now().UTC(), Config: rawCfg,
		RepoTags: tags, RepoDigests: repoDigests,
	}
	return s.record(rec)
}

// resolve finds ref's descriptor on the first host that has it: mirrors in
// order, then the registry itself. The descriptor fetches the rest from the
// same host, with the same options.
func (s *Service) resolve(ctx context.Context, named reference.Named, hosts []registryHost, auth *Auth) (*remote.Descriptor, error) {
	var errs []error
	for _, h := range hosts {
		nameOpts := []name.Option{name.WithDefaultRegistry(h.host)}
		if h.insecure() {
			nameOpts = append(nameOpts, name.Insecure)
		}
		path := reference.Path(named)
		var nref name.Reference
		var err error
		if d, ok := named.(reference.Digested); ok {
			nref, err = name.NewDigest(h.host+"/"+path+"@"+d.Digest().String(), nameOpts...)
		} else {
			nref, err = name.NewTag(h.host+"/"+path+":"+named.(reference.Tagged).Tag(), nameOpts...)
		}
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %w: %v", named, errdefs.ErrInvalidArgument, err)
		}
		opts := []remote.Option{
			remote.WithContext(ctx),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
			remote.WithUserAgent("berth"),
			remote.WithTransport(h.transport()),
		}
		if a := s.authFor(h, auth); a != nil {
			opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{
				Username: a.Username, Password: a.Password, Auth: a.Auth,
				IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
			})))
		}
		desc, err := remote.Get(nref, opts...)
		if err == nil {
			if h.host != reference.Domain(named) {
				s.log.Info("pulling from mirror", slog.String("image", named.String()), slog.String("mirror", h.host))
			}
			return desc, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", h.host, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("pull %s: %w", named, errors.Join(errs...))
}

// authFor picks the credentials for a host: the pull's own go to the
// registry it names and never to a mirror (a mirror is another party); the
// configured ones go to the host they are configured for.
func (s *Service) authFor(h registryHost, pull *Auth) *Auth {
	if pull != nil && *pull != (Auth{}) && h.upstream {
		return pull
	}
	if a, ok := s.creds[h.host]; ok {
		return &a
	}
	return nil
}

// ChainIDs computes the layers' chain IDs from their diff IDs, bottom first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

func toStrings(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// record merges rec into the store: a tag that named another image moves to rec.
func (s *Service) record(rec store.Image) (store.Image, error) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	all, err := s.db.Images.List()
	if err != nil {
		return rec, err
	}
	for _, other := range all {
		if other.ID == rec.ID {
			rec.RepoTags = union(other.RepoTags, rec.RepoTags)
			rec.RepoDigests = union(other.RepoDigests, rec.RepoDigests)
			rec.CreatedAt = other.CreatedAt
			rec.Pinned = other.Pinned
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(other.RepoTags), func(t string) bool { return slices.Contains(rec.RepoTags, t) })
		if len(kept) != len(other.RepoTags) {
			other.RepoTags = kept
			if err := s.db.Images.Put(other.ID, other); err != nil {
				return rec, err
			}
		}
	}
	for _, p := range s.pinned {
		if slices.Contains(rec.RepoTags, p) || slices.Contains(rec.RepoDigests, p) {
			rec.Pinned = true
		}
	}
	return rec, s.db.Images.Put(rec.ID, rec)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// fetchLayers downloads and unpacks the layers not yet unpacked, a few at a
// time; each layer streams from the registry through the digest check and
// decompression into the unpacker, with no stop on disk in between.
func (s *Service) fetchLayers(ctx context.Context, layers []v1.Layer, diffIDs, chainIDs []digest.Digest, prog *progress) error {
	for i, l := range layers {
		if !s.snapshots.HasLayer(chainIDs[i]) {
			if n, err := l.Size(); err == nil {
				prog.total += n
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 3)
	errs := make(chan error, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		if s.snapshots.HasLayer(chainIDs[i]) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			if err := s.fetchLayerOnce(ctx, l, diffIDs[i], chainIDs[i], prog); err != nil {
				cancel()
				errs <- fmt.Errorf("layer %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if !errors.Is(err, context.Canceled) || len(all) == 0 {
			all = append(all, err)
		}
	}
	if len(all) > 0 {
		return all[0]
	}
	return nil
}

// layerFetch is one download of a layer that concurrent pulls share.
type layerFetch struct {
	done chan struct{}
	err  error
}

// fetchLayerOnce fetches a layer unless another pull is fetching it, in which
// case it waits for that one's result.
func (s *Service) fetchLayerOnce(ctx context.Context, l v1.Layer, diffID, chainID digest.Digest, prog *progress) error {
	s.inflightMu.Lock()
	if f, ok := s.inflight[chainID]; ok {
		s.inflightMu.Unlock()
		select {
		case <-f.done:
			if f.err == nil || s.snapshots.HasLayer(chainID) {
				return nil
			}
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.snapshots.HasLayer(chainID) {
		s.inflightMu.Unlock()
		return nil
	}
	f := &layerFetch{done: make(chan struct{})}
	s.inflight[chainID] = f
	s.inflightMu.Unlock()
	f.err = s.fetchLayer(ctx, l, diffID, chainID, prog)
	s.inflightMu.Lock()
	delete(s.inflight, chainID)
	s.inflightMu.Unlock()
	close(f.done)
	return f.err
}

func (s *Service) fetchLayer(ctx context.Context, l v1.Layer, diffID, chainID digest.Digest, prog *progress) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	dgst := digest.Digest(h.String())
	size, err := l.Size()
	if err != nil {
		return err
	}
	tmp, err := s.snapshots.NewLayerDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// A blob already stored (an import, or a layer whose snapshot was
	// lost) is unpacked from the store; otherwise it streams into the store
	// and the unpacker at once.
	var rc io.ReadCloser
	var sink blobSink = discard{}
	stored := s.content.Has(dgst)
	if stored {
		rc, err = s.content.Open(dgst)
	} else {
		rc, err = l.Compressed()
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", dgst, err)
	}
	defer rc.Close()
	if !stored {
		w, err := s.content.Writer(dgst, size)
		if err != nil {
			return err
		}
		defer w.Abort()
		sink = w
	}
	counted := &countingReader{r: rc, report: func(n int64) { prog.add(dgst, n, size, false) }}
	dr, err := decompress(io.TeeReader(counted, sink))
	if err != nil {
		return fmt.Errorf("layer %s: %w", dgst, err)
	}
	got, _, err := unpack.Apply(ctx, tmp, dr)
	dr.Close()
	if err != nil {
		return fmt.Errorf("unpack %s: %w", dgst, err)
	}
	// Read what the decompressor left (trailing data) so the blob is whole.
	if _, err := io.Copy(sink, counted); err != nil {
		return fmt.Errorf("fetch %s: %w", dgst, err)
	}
	if err := sink.Commit(); err != nil {
		return err
	}
	if got != diffID {
		return fmt.Errorf("layer %s: uncompressed digest %s, config says %s", dgst, got, diffID)
	}
	if err := s.snapshots.CommitLayer(tmp, chainID); err != nil {
		return err
	}
	prog.add(dgst, 0, size, true)
	return nil
}

// blobSink is where a layer's compressed bytes go as they are read: the
// content store, or nowhere when the blob is stored already.
type blobSink interface {
	io.Writer
	Commit() error
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) Commit() error               { return nil }

// decompress recognises gzip and zstd by their magic numbers; anything else
// is taken as an uncompressed tar.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := newPeekReader(r)
	magic, _ := br.Peek(4)
	switch compressionOf(magic) {
	case gzipped:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case zstandard:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// List returns every image.
func (s *Service) List() ([]store.Image, error) { return s.db.Images.List() }

// Resolve finds the image ref names: an image ID (sha256:..., or its hex), a
// tag or a digest reference, normalised as Docker does.
func (s *Service) Resolve(ref string) (store.Image, error) {
	if ref == "" {
		return store.Image{}, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	id := ref
	if !strings.HasPrefix(id, "sha256:") && len(id) == 64 {
		id = "sha256:" + id
	}
	if img, err := s.db.Images.Get(id); err == nil {
		return img, nil
	}
	named, err := Normalize(ref)
	if err != nil {
		return store.Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	all, err := s.db.Images.List()
	if err != nil {
		return store.Image{}, err
	}
	want := named.String()
	for _, img := range all {
		if slices.Contains(img.RepoTags, want) || slices.Contains(img.RepoDigests, want) {
			return img, nil
		}
	}
	return store.Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

// Config decodes an image's OCI config.
func Config(img store.Image) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(img.Config, &c); err != nil {
		return c, fmt.Errorf("image %s: config: %w", img.ID, err)
	}
	return c, nil
}

// ChainIDsOf returns an image's chain IDs as digests.
func ChainIDsOf(img store.Image) []digest.Digest {
	out := make([]digest.Digest, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		out[i] = digest.Digest(c)
	}
	return out
}
