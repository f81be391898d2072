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
	"slices"
	"syscall"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/spawn"
	"github.com/berth-runtime/berth/internal/store"
)

// TOCDigestAnnotation marks an eStargz layer in a manifest: the digest of
// its table of contents (estargz.TOCJSONDigestAnnotation, the name
// containerd's stargz snapshotter, BuildKit and nerdctl write).
const TOCDigestAnnotation = "containerd.io/snapshot/stargz/toc.digest"

// LazyLayer is what berth-lazyfs needs to serve one eStargz layer; berthd
// writes it into the layer's lazy directory (LazyConfigFile).
type LazyLayer struct {
	Blob       RemoteBlob    `json:"blob"`
	TOCDigest  digest.Digest `json:"tocDigest"`
	Mountpoint string        `json:"mountpoint"`
	// Content is the content store's root: the whole blob is linked there
	// once the background stream has it.
	Content string `json:"content"`
}

// LazyConfigFile is the LazyLayer in a lazy layer's directory.
const LazyConfigFile = "lazy.json"

// ReadLazyLayer reads the LazyLayer in dir.
func ReadLazyLayer(dir string) (LazyLayer, error) {
	var l LazyLayer
	b, err := os.ReadFile(filepath.Join(dir, LazyConfigFile))
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("%s: %w", filepath.Join(dir, LazyConfigFile), err)
	}
	return l, nil
}

// SetLazyPulls makes pulls mount eStargz layers lazily, each served by
// server (the berth-lazyfs binary); "" turns lazy pulls off.
func (s *Service) SetLazyPulls(server string) { s.lazyServer = server }

// LazyStatus is what crictl info shows of lazy pulls.
type LazyStatus struct {
	Server string `json:"server,omitempty"` // berth-lazyfs, when on
	Off    string `json:"off,omitempty"`    // why they are off
	// Layers are the lazily mounted layers, Served those whose server
	// answers (the others are served again or unpacked at berthd's start).
	Layers int `json:"layers"`
	Served int `json:"served"`
}

// LazyStatus reports lazy pulls: on or why not (off), and their layers.
func (s *Service) LazyStatus(off string) LazyStatus {
	st := LazyStatus{Server: s.lazyServer, Off: off}
	layers, _ := s.snapshots.LazyServed()
	st.Layers = len(layers)
	for _, served := range layers {
		if served {
			st.Served++
		}
	}
	return st
}

// source is where a pull's layers come from, for the ones mounted lazily.
type source struct {
	named reference.Named
	host  registryHost
	auth  *Auth
}

// lazyCandidate returns the TOC digest of layer i of img when pulls mount
// eStargz lazily and the layer is one.
func (s *Service) lazyCandidate(src *source, img v1.Image, i int) (digest.Digest, bool) {
	if s.lazyServer == "" || src == nil {
		return "", false
	}
	m, err := img.Manifest()
	if err != nil || i >= len(m.Layers) {
		return "", false
	}
	toc, err := digest.Parse(m.Layers[i].Annotations[TOCDigestAnnotation])
	return toc, err == nil
}

// mountLazy mounts the eStargz layer l (TOC digest toc) as the layer with
// chain ID c, served by a berth-lazyfs of its own.
func (s *Service) mountLazy(ctx context.Context, src *source, l v1.Layer, toc, c digest.Digest) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	cfg := LazyLayer{
		Blob: RemoteBlob{
			HostsDir: s.hostsDir, Registry: reference.Domain(src.named), Host: src.host.host,
			Repository: reference.Path(src.named), Digest: digest.Digest(h.String()), Size: size,
			Auth: s.authFor(src.host, src.auth),
		},
		TOCDigest: toc, Mountpoint: s.snapshots.LayerPath(c), Content: s.content.Root(),
	}
	dir := s.snapshots.LazyDir(c)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(cfg)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, LazyConfigFile), b, 0o600)
	}
	if err == nil {
		err = os.Mkdir(cfg.Mountpoint, 0o755)
	}
	if err == nil {
		err = s.startLazyServer(ctx, dir)
	}
	if err != nil {
		_ = s.snapshots.RemoveLayer(c)
		return err
	}
	return nil
}

// startLazyServer starts berth-lazyfs over the lazy layer in dir and waits
// until it has mounted it (or failed to, with its reason).
func (s *Service) startLazyServer(ctx context.Context, dir string) error {
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	// Its own session, as a shim's: it must outlive berthd.
	p, err := os.StartProcess(s.lazyServer, []string{s.lazyServer, "--dir", dir}, &os.ProcAttr{
		Dir: dir, Env: os.Environ(), Files: []*os.File{nil, logf, logf, readyW},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.lazyServer, err)
	}
	go func() {
		st, _ := p.Wait()
		// Removal deletes its pid file before it stops it: an end with the
		// file still there is a server lost under its containers.
		if _, err := os.Stat(filepath.Join(dir, "pid")); err == nil {
			s.log.Error("a lazy layer's server ended while its layer is in use: its containers' reads of what it had not fetched fail until they are made again; berthd serves or unpacks it again at its next start",
				slog.String("dir", dir), slog.Any("status", st), slog.String("log", filepath.Join(dir, "server.log")))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := spawn.AwaitReady(ctx, readyR, p, s.lazyServer, filepath.Join(dir, "server.log")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pid"), []byte(fmt.Sprint(p.Pid)), 0o600)
}

// ReviveLazyLayers finds, at berthd's start, the lazy layers whose server
// is gone (a reboot, a crash) and starts it again; a layer that cannot be
// served again is removed, so that the next pull fetches it, and so is one
// no image has (the pull that mounted it was cut short). The servers still
// running are left alone: a berthd restart does not touch them.
func (s *Service) ReviveLazyLayers(ctx context.Context) {
	layers, err := s.snapshots.LazyServed()
	if err != nil {
		s.log.Warn("lazy layers: list", slog.Any("err", err))
	}
	if len(layers) == 0 {
		return // the common start: no image was pulled lazily
	}
	imgs, err := s.db.Images.List()
	if err != nil {
		s.log.Warn("lazy layers: list images", slog.Any("err", err))
		return
	}
	used := map[string]bool{}
	diffIDs := map[string]digest.Digest{}
	for _, img := range imgs {
		for i, c := range img.ChainIDs {
			used[c] = true
			if i < len(img.Layers) {
				diffIDs[c] = digest.Digest(img.Layers[i])
			}
		}
	}
	for c, served := range layers {
		if !used[c.String()] {
			s.log.Info("lazy layer of a pull cut short removed", slog.String("layer", c.String()))
			_ = s.snapshots.RemoveLayer(c)
			continue
		}
		if served {
			continue
		}
		s.snapshots.UnmountLazy(c)
		if err := s.unpackWhole(ctx, c, diffIDs[c.String()]); err == nil {
			s.log.Info("lazy layer unpacked: its blob was whole", slog.String("layer", c.String()))
			continue
		}
		var err error
		if s.lazyServer == "" {
			err = errors.New("lazy pulls are off")
		} else {
			err = s.startLazyServer(ctx, s.snapshots.LazyDir(c))
		}
		if err == nil {
			s.log.Info("lazy layer served again", slog.String("layer", c.String()))
			continue
		}
		s.log.Warn("lazy layer cannot be served again; removed", slog.String("layer", c.String()), slog.Any("err", err))
		_ = s.snapshots.RemoveLayer(c)
	}
}

// unpackWhole makes the lazy layer c, whose mount is gone, an ordinary
// layer when its server had streamed the whole blob into the content store:
// unpacked from there (its diff ID checked), in place of the mount point,
// and no server needed any more. It fails, and leaves the layer as it was,
// when the blob is not whole.
func (s *Service) unpackWhole(ctx context.Context, c, diffID digest.Digest) error {
	cfg, err := ReadLazyLayer(s.snapshots.LazyDir(c))
	if err != nil {
		return err
	}
	if err := cfg.Blob.Digest.Validate(); err != nil {
		return fmt.Errorf("layer %s: blob digest %q: %w", c, cfg.Blob.Digest, err)
	}
	size, err := s.content.Size(cfg.Blob.Digest)
	if err != nil {
		return err
	}
	l, err := partial.CompressedToLayer(storedBlob{cs: s.content, d: cfg.Blob.Digest, size: size})
	if err != nil {
		return err
	}
	// The mount point, an empty directory now, makes room for the layer
	// (os.Rename will not rename over a directory).
	if err := os.Remove(s.snapshots.LayerPath(c)); err != nil {
		return fmt.Errorf("layer %s: remove its mount point: %w", c, err)
	}
	if err := s.fetchLayer(ctx, l, diffID, c, nil); err != nil {
		return err
	}
	return os.RemoveAll(s.snapshots.LazyDir(c))
}

// wholeBlobs makes sure the blobs of img's lazily mounted layers are in the
// content store, fetching those whose server has not streamed them yet:
// an export or a push needs every byte.
func (s *Service) wholeBlobs(ctx context.Context, img store.Image) error {
	var missing []digest.Digest
	for _, b := range img.Blobs {
		if d := digest.Digest(b); !s.content.Has(d) {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	layers, err := s.snapshots.LazyLayers()
	if err != nil {
		return err
	}
	for _, c := range layers {
		cfg, err := ReadLazyLayer(s.snapshots.LazyDir(c))
		if err != nil || !slices.Contains(missing, cfg.Blob.Digest) || s.content.Has(cfg.Blob.Digest) {
			continue
		}
		if err := s.fetchBlob(ctx, cfg.Blob); err != nil {
			return fmt.Errorf("layer %s, pulled lazily: %w", cfg.Blob.Digest, err)
		}
	}
	return nil
}

func (s *Service) fetchBlob(ctx context.Context, b RemoteBlob) error {
	r, err := OpenRemoteBlob(ctx, b)
	if err != nil {
		return err
	}
	body, err := r.Range(ctx, 0, -1)
	if err != nil {
		return err
	}
	defer body.Close()
	w, err := s.content.Writer(b.Digest, b.Size)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("fetch %s: %w", b.Digest, err)
	}
	return w.Commit()
}
