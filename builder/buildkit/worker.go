package buildkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/diff/apply"
	ctdmetadata "github.com/containerd/containerd/v2/core/metadata"
	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/containerd/v2/plugins/diff/walking"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache/metadata"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/executor/resources"
	"github.com/moby/buildkit/executor/runcexecutor"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/session"
	containerdsnapshot "github.com/moby/buildkit/snapshot/containerd"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/moby/buildkit/util/network"
	"github.com/moby/buildkit/util/resolver"
	"github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker/base"
	wlabel "github.com/moby/buildkit/worker/label"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// snapshotterName is the one snapshotter BuildKit's cache is kept in.
const snapshotterName = "overlayfs"

// worker is BuildKit's base worker with Berth's exporter for images.
type worker struct {
	*base.Worker
	moby func(inner exporter.Exporter) exporter.Exporter
	// snapshots holds its own bolt database, which base.Worker's Close
	// leaves open: a BuildKit started again in this process would wait on
	// its lock for ever.
	snapshots ctdsnapshot.Snapshotter
}

// Close closes what the worker opened.
func (w *worker) Close() error {
	return errors.Join(w.Worker.Close(), w.snapshots.Close())
}

// Exporter gives "moby" (buildx's docker driver) and "image" Berth's
// exporter; local, tar, oci and docker are BuildKit's own.
func (w *worker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	switch name {
	case "moby", client.ExporterImage:
		inner, err := w.Worker.Exporter(client.ExporterImage, sm)
		if err != nil {
			return nil, err
		}
		return w.moby(inner), nil
	}
	return w.Worker.Exporter(name, sm)
}

// newWorker builds the worker under s.cfg.Root.
func (s *Service) newWorker(ctx context.Context) (_ *worker, err error) {
	var closers []func() error // what a failed start opened
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
		}
	}()
	root := s.cfg.Root
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	rm, err := resources.NewMonitor()
	if err != nil {
		return nil, err
	}
	providers := map[pb.NetMode]network.Provider{
		pb.NetMode_UNSET: newPodNetwork(s.containers, s.log),
		pb.NetMode_HOST:  network.NewHostProvider(),
		pb.NetMode_NONE:  network.NewNoneProvider(),
	}
	exe, err := runcexecutor.New(runcexecutor.Opt{
		Root:                filepath.Join(root, "executor"),
		CommandCandidates:   []string{s.cfg.RuntimePath},
		ProcessMode:         oci.ProcessSandbox,
		DefaultCgroupParent: s.cfg.CgroupParent,
		ResourceMonitor:     rm,
	}, providers)
	if err != nil {
		return nil, fmt.Errorf("buildkit executor: %w", err)
	}
	db, err := s.openCacheIndex(root)
	if err != nil {
		return nil, err
	}
	closers = append(closers, db.Close)
	sn, err := overlay.NewSnapshotter(filepath.Join(root, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("buildkit snapshots: %w", err)
	}
	closers = append(closers, sn.Close)
	blobs, err := local.NewStore(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	mdb := ctdmetadata.NewDB(db, blobs, map[string]ctdsnapshot.Snapshotter{snapshotterName: sn})
	if err := mdb.Init(ctx); err != nil {
		return nil, err
	}
	cs := containerdsnapshot.NewContentStore(contentStore{Store: mdb.ContentStore(), berth: s.images.Blobs()}, "buildkit")
	id, err := base.ID(root)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewStore(filepath.Join(root, "metadata_v2.db"))
	if err != nil {
		return nil, err
	}
	closers = append(closers, md.Close)
	hostname, _ := os.Hostname()
	opt := base.WorkerOpt{
		ID:   id,
		Root: root,
		Labels: map[string]string{
			wlabel.Executor:       "oci",
			wlabel.Snapshotter:    snapshotterName,
			wlabel.Hostname:       hostname,
			wlabel.Network:        "cni",
			wlabel.OCIProcessMode: oci.ProcessSandbox.String(),
		},
		Platforms:        []ocispecs.Platform{platforms.Normalize(platforms.DefaultSpec())},
		GCPolicy:         gcPolicy(root),
		BuildkitVersion:  client.BuildkitVersion{Package: version.Package, Version: version.Version, Revision: version.Revision},
		MetadataStore:    md,
		ContentMetadata:  db,
		NetworkProviders: providers,
		Executor:         exe,
		Snapshotter:      containerdsnapshot.NewSnapshotter(snapshotterName, mdb.Snapshotter(snapshotterName), "buildkit", nil),
		ContentStore:     cs,
		Applier:          apply.NewFileSystemApplier(cs),
		Differ:           walking.NewWalkingDiff(cs),
		ImageStore:       imageStore{images: s.images},
		RegistryHosts:    resolver.NewRegistryConfig(nil),
		LeaseManager:     leaseutil.WithNamespace(ctdmetadata.NewLeaseManager(mdb), "buildkit"),
		GarbageCollect:   mdb.GarbageCollect,
		MountPoolRoot:    filepath.Join(root, "cachemounts"),
		ResourceMonitor:  rm,
	}
	bw, err := base.NewWorker(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("buildkit worker: %w", err)
	}
	blobDir := filepath.Join(root, "content", "blobs")
	return &worker{Worker: bw, snapshots: sn, moby: func(inner exporter.Exporter) exporter.Exporter {
		return mobyExporter{inner: inner, images: s.images, blobPath: func(d digest.Digest) string {
			return filepath.Join(blobDir, d.Algorithm().String(), d.Encoded())
		}}
	}}, nil
}

// gcPolicy is BuildKit's default: keep the cache within a share of the disk
// it is on, the oldest and least used records going first.
func gcPolicy(root string) []client.PruneInfo {
	dstat, _ := disk.GetDiskStat(root)
	var out []client.PruneInfo
	for _, p := range config.DefaultGCPolicy(config.GCConfig{}, dstat) {
		out = append(out, client.PruneInfo{
			Filter: p.Filters, All: p.All, KeepDuration: p.KeepDuration.Duration,
			ReservedSpace: p.ReservedSpace.AsBytes(dstat), MaxUsedSpace: p.MaxUsedSpace.AsBytes(dstat), MinFreeSpace: p.MinFreeSpace.AsBytes(dstat),
		})
	}
	return out
}
