package lazy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/content"
)

// Files of a lazy layer's directory besides images.LazyConfigFile.
const (
	partialBlob = "blob.partial" // the prefix streamed so far
	wholeBlob   = "blob"         // the same file once whole and verified
	chunksDir   = "chunks"       // decompressed, verified chunks by offset
)

// Serve mounts the layer that dir's images.LazyConfigFile describes and
// serves it until it is unmounted or ctx ends. ready hears once: nil when
// the layer is mounted, or why it could not be.
func Serve(ctx context.Context, dir string, log *slog.Logger, ready func(error)) error {
	srv, err := mount(ctx, dir, log)
	ready(err)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		// Asked to stop (berthd removes the layer, which it does once no
		// container uses it): unmount, detached if the kernel still holds it.
		if err := srv.Unmount(); err != nil {
			_ = unix.Unmount(srv.mountpoint, unix.MNT_DETACH)
		}
	}()
	srv.Wait()
	return nil
}

type server struct {
	*fuse.Server
	mountpoint string
}

func mount(ctx context.Context, dir string, log *slog.Logger) (*server, error) {
	cfg, err := images.ReadLazyLayer(dir)
	if err != nil {
		return nil, err
	}
	rb, err := images.OpenRemoteBlob(ctx, cfg.Blob)
	if err != nil {
		return nil, err
	}
	b, err := newBlob(rb, cfg.Blob.Size, cfg.Blob.Digest, filepath.Join(dir, partialBlob), log)
	if err != nil {
		return nil, err
	}
	l, err := openLayer(b, cfg.TOCDigest, filepath.Join(dir, chunksDir))
	if err != nil {
		return nil, err
	}
	r, err := newRoot(l, log)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(cacheFor) * time.Second
	fsrv, err := fs.Mount(cfg.Mountpoint, r, &fs.Options{
		EntryTimeout: &timeout, AttrTimeout: &timeout, NegativeTimeout: &timeout,
		MountOptions: fuse.MountOptions{
			// Every user of the container reads it, the kernel checks
			// the files' modes, and the image's set-user-ID files and
			// devices are as they would be unpacked.
			AllowOther: true,
			// Pods in user namespaces stack it idmapped, as unpacked layers.
			IDMappedMount:     true,
			Options:           []string{"default_permissions"},
			DirectMountStrict: true,
			DirectMountFlags:  unix.MS_RDONLY,
			FsName:            "berth-lazy:" + cfg.Blob.Digest.Encoded()[:12],
			Name:              "berth",
			MaxReadAhead:      1 << 20,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s at %s: %w", cfg.Blob.Digest, cfg.Mountpoint, err)
	}
	b.begin()
	go func() {
		if err := b.stream(ctx); err != nil {
			log.Warn("background fetch stopped; reads go to the registry", slog.Any("err", err))
			return
		}
		whole := filepath.Join(dir, wholeBlob)
		if err := os.Rename(filepath.Join(dir, partialBlob), whole); err != nil {
			log.Warn("keep whole blob", slog.Any("err", err))
			return
		}
		if err := content.At(cfg.Content).Link(cfg.Blob.Digest, whole); err != nil {
			log.Warn("store whole blob", slog.Any("err", err))
			return
		}
		log.Info("layer fetched whole", slog.String("blob", cfg.Blob.Digest.String()))
	}()
	go func() {
		if err := l.prefetch(ctx, r.t.files); err != nil {
			log.Warn("prefetch", slog.Any("err", err))
		}
	}()
	return &server{Server: fsrv, mountpoint: cfg.Mountpoint}, nil
}
