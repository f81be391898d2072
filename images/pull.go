package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

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
func (s *Service) PullWith(ctx context.Context, ref string, o PullOptions) (rec store.Image, err error) {
	if s.hooks.Pulled != nil {
		start := time.Now()
		defer func() { s.hooks.Pulled(rec.Size, time.Since(start), err) }()
	}
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
	desc, host, err := s.resolve(ctx, named, hosts, auth)
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
	src := &source{named: named, host: host, auth: auth}
	rec, err = s.ingest(ctx, img, src, tags, []string{repoDigest}, newProgress(o.Progress))
	if err != nil {
		return store.Image{}, fmt.Errorf("pull %s: %w", named, err)
	}
	s.log.Info("pulled image", slog.String("image", named.String()), slog.String("id", rec.ID),
		slog.Int64("bytes", rec.Size), slog.Duration("took", time.Since(start)))
	return rec, nil
}

// ingest stores img's manifest, config and layers (unpacked, or mounted
// lazily when src, the registry they come from, has them as eStargz), and
// records it under the given names. Call with gcMu held shared.
func (s *Service) ingest(ctx context.Context, img v1.Image, src *source, tags, repoDigests []string, prog *progress) (store.Image, error) {
	if err := checkLimits(img); err != nil {
		return store.Image{}, err
	}
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
	if err := s.fetchLayers(ctx, img, src, layers, diffIDs, chainIDs, prog); err != nil {
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
func (s *Service) resolve(ctx context.Context, named reference.Named, hosts []registryHost, auth *Auth) (*remote.Descriptor, registryHost, error) {
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
			return nil, registryHost{}, fmt.Errorf("image reference %q: %w: %v", named, errdefs.ErrInvalidArgument, err)
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
			return desc, h, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", h.host, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, registryHost{}, fmt.Errorf("pull %s: %w", named, errors.Join(errs...))
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
