package engine

import (
	"context"
	"os"
	"path/filepath"
	"runtime"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// What `docker info` and `docker system df` tell of the node.

// Info is `docker info`'s view of the node.
type Info struct {
	Containers, Running, Paused, Stopped, Images int
	KernelVersion, CgroupVersion, RootDir        string
	MemTotal                                     uint64
	NCPU                                         int
	// Runtimes are the runtime handlers' names ("berth" the default).
	Runtimes []string
}

// Info counts the Docker containers and images and reads the host's facts.
func (e *Engine) Info(ctx context.Context) Info {
	all, _ := e.Containers()
	in := Info{Containers: len(all), NCPU: runtime.NumCPU(), RootDir: e.images.Snapshots().Root(), CgroupVersion: "1"}
	for _, c := range all {
		switch {
		case c.Paused:
			in.Paused++
		case c.State == store.ContainerRunning:
			in.Running++
		default:
			in.Stopped++
		}
	}
	imgs, _ := e.images.List()
	in.Images = len(imgs)
	in.KernelVersion, _, _ = linux.KernelRelease()
	if mode, _, _ := linux.CgroupMode(); mode == "v2" {
		in.CgroupVersion = "2"
	}
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	in.MemTotal = uint64(si.Totalram) * uint64(si.Unit)
	for _, h := range e.containers.Handlers(ctx) {
		name := h.Name
		if name == "" {
			name = "berth"
		}
		in.Runtimes = append(in.Runtimes, name)
	}
	return in
}

// ImageUsage, ContainerUsage and VolumeUsage are `docker system df`'s rows.
type ImageUsage struct {
	Image      store.Image
	Size       int64
	Containers int
}

type ContainerUsage struct {
	Container store.Container
	SizeRw    int64
}

type VolumeUsage struct {
	Volume   Volume
	Size     int64
	RefCount int
}

// DiskUsage is `docker system df`: images with their unpacked size and how
// many containers use each, containers with their writable layers,
// volumes with their size and users, and all the layers' bytes. Berth has
// no build cache.
type DiskUsage struct {
	LayersSize uint64
	Images     []ImageUsage
	Containers []ContainerUsage
	Volumes    []VolumeUsage
}

// DiskUsage reads what `docker system df` shows.
func (e *Engine) DiskUsage() (DiskUsage, error) {
	imgs, err := e.images.List()
	if err != nil {
		return DiskUsage{}, err
	}
	ctrs, _ := e.Containers()
	users := map[string]int{}
	for _, c := range ctrs {
		users[c.ImageID]++
	}
	snaps := e.images.Snapshots()
	var du DiskUsage
	if layers, err := snaps.LayersUsage(); err == nil {
		du.LayersSize = layers.Bytes
	}
	for _, img := range imgs {
		var size int64
		for _, ch := range img.ChainIDs {
			if u, err := snaps.LayerUsage(digest.Digest(ch)); err == nil {
				size += int64(u.Bytes)
			}
		}
		du.Images = append(du.Images, ImageUsage{Image: img, Size: size, Containers: users[img.ID]})
	}
	for _, c := range ctrs {
		cu := ContainerUsage{Container: c}
		if u, err := snaps.WritableUsage(c.ID); err == nil {
			cu.SizeRw = int64(u.Bytes)
		}
		du.Containers = append(du.Containers, cu)
	}
	refs := map[string]int{}
	for name := range e.volumesInUse() {
		refs[name]++
	}
	vols, err := e.Volumes(nil)
	if err != nil {
		return du, err
	}
	for _, v := range vols {
		size, _ := dirUsage(filepath.Join(e.volumeDir, v.Name))
		du.Volumes = append(du.Volumes, VolumeUsage{Volume: v, Size: int64(size), RefCount: refs[v.Name]})
	}
	return du, nil
}

// Hostname is the node's name, as `docker info` shows it.
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// KernelVersion is the node's kernel release.
func KernelVersion() string {
	release, _, _ := linux.KernelRelease()
	return release
}
