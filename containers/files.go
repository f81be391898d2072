package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/go-archive"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// rootfs is where a container's root file system is mounted on the host.
func rootfs(rec store.Container) string { return filepath.Join(rec.Dir, "bundle", "rootfs") }

// RootFS is container id's root file system as the host sees it: its image
// and writable layer, without its volumes (what docker export writes).
func (s *Service) RootFS(id string) (string, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return "", err
	}
	return rootfs(rec), nil
}

// FilesRoot is where container id's files are as its processes see them:
// while it runs, its init's root (volumes, binds and tmpfs included, as
// docker cp reaches them); otherwise its root file system.
func (s *Service) FilesRoot(id string) (string, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return "", err
	}
	if rec.State == store.ContainerRunning && rec.Pid > 0 {
		// The init's cgroup must still be the container's (named after
		// it): a reused pid is another process.
		if cg, err := linux.MemoryCgroupOf(rec.Pid); err == nil && strings.Contains(cg, rec.ID) {
			return "/proc/" + strconv.Itoa(rec.Pid) + "/root", nil
		}
	}
	if rec.State == store.ContainerExited || rec.State == store.ContainerCreated || rec.State == store.ContainerRunning {
		return rootfs(rec), nil
	}
	return "", fmt.Errorf("container %s is %s: %w", id, rec.State, errdefs.ErrFailedPrecondition)
}

// Changes lists what container id changed in its image's files.
func (s *Service) Changes(id string) ([]snapshot.Change, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return nil, err
	}
	raw, err := s.rawChanges(rec)
	if err != nil {
		return nil, err
	}
	made := mountPointsMade(rec, raw)
	return slices.DeleteFunc(raw, func(c snapshot.Change) bool { return made[c.Path] }), nil
}

// rawChanges is everything rec's writable layer holds over its image.
func (s *Service) rawChanges(rec store.Container) ([]snapshot.Change, error) {
	img, err := s.images.Resolve(rec.ImageID)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: its image: %w", rec.ID, err)
	}
	chain := make([]digest.Digest, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		chain[i] = digest.Digest(c)
	}
	return s.images.Snapshots().Changes(rec.ID, chain)
}

// mountPointsMade are the paths the runtime added to make mount points for
// rec's mounts (/etc/hosts, a volume's directory): not the container's changes.
func mountPointsMade(rec store.Container, raw []snapshot.Change) map[string]bool {
	made := map[string]bool{}
	var spec specs.Spec
	b, err := os.ReadFile(filepath.Join(rec.Dir, "bundle", "config.json"))
	if err != nil || json.Unmarshal(b, &spec) != nil {
		return made
	}
	dests := map[string]bool{}
	for _, m := range spec.Mounts {
		dests[filepath.Clean(m.Destination)] = true
	}
	for _, c := range raw {
		if c.Kind == snapshot.Added && dests[c.Path] {
			made[c.Path] = true
		}
	}
	return made
}

// Commit makes an image of container id's image with its changes as one
// more layer (overlay whiteouts become the layer's deletions; the mount
// points the runtime made are left out), as docker commit does.
func (s *Service) Commit(ctx context.Context, id string, o images.CommitOptions) (store.Image, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return store.Image{}, err
	}
	raw, err := s.rawChanges(rec)
	if err != nil {
		return store.Image{}, err
	}
	var exclude []string
	for p := range mountPointsMade(rec, raw) {
		exclude = append(exclude, strings.TrimPrefix(p, "/"))
	}
	upper := s.images.Snapshots().UpperPath(id)
	o.Layer = func() (io.ReadCloser, error) {
		return archive.TarWithOptions(upper, &archive.TarOptions{WhiteoutFormat: archive.OverlayWhiteoutFormat, ExcludePatterns: exclude})
	}
	return s.images.Commit(ctx, rec.ImageID, o)
}
