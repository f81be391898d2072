package containers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

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
	img, err := s.images.Resolve(rec.ImageID)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: its image: %w", id, err)
	}
	chain := make([]digest.Digest, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		chain[i] = digest.Digest(c)
	}
	changes, err := s.images.Snapshots().Changes(id, chain)
	if err != nil {
		return nil, err
	}
	// Mount points the runtime made for the container's mounts (/etc/hosts,
	// a volume's directory) are not the container's changes.
	var spec specs.Spec
	if b, err := os.ReadFile(filepath.Join(rec.Dir, "bundle", "config.json")); err == nil && json.Unmarshal(b, &spec) == nil {
		made := map[string]bool{}
		for _, m := range spec.Mounts {
			made[filepath.Clean(m.Destination)] = true
		}
		changes = slices.DeleteFunc(changes, func(c snapshot.Change) bool { return c.Kind == snapshot.Added && made[c.Path] })
	}
	return changes, nil
}
