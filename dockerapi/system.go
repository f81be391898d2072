package dockerapi

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/opencontainers/go-digest"
)

func (s *Server) routeSystem() {
	ping := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Ostype", "linux")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("OK"))
		}
	}
	s.mux.HandleFunc("GET /_ping", ping)
	s.mux.HandleFunc("HEAD /_ping", ping)
	s.mux.HandleFunc("GET /version", s.version_)
	s.mux.HandleFunc("GET /info", s.info)
	s.mux.HandleFunc("GET /system/df", s.systemDF)
	s.mux.HandleFunc("POST /auth", s.login)
}

func (s *Server) version_(w http.ResponseWriter, r *http.Request) {
	release, _, _ := linux.KernelRelease()
	writeJSON(w, http.StatusOK, map[string]any{
		"Platform":      map[string]string{"Name": "Berth"},
		"Version":       s.version,
		"ApiVersion":    MaxAPIVersion,
		"MinAPIVersion": MinAPIVersion,
		"Os":            "linux",
		"Arch":          runtime.GOARCH,
		"KernelVersion": release,
		"GoVersion":     runtime.Version(),
		"BuildTime":     "",
		"Components": []map[string]any{
			{"Name": "Engine", "Version": s.version, "Details": map[string]string{"ApiVersion": MaxAPIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH}},
		},
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	all, _ := s.containers.ListOwned(Owner)
	running, stopped, paused := 0, 0, 0
	for _, c := range all {
		switch {
		case c.Paused:
			paused++
		case c.State == store.ContainerRunning:
			running++
		default:
			stopped++
		}
	}
	imgs, _ := s.images.List()
	release, _, _ := linux.KernelRelease()
	mode, _, _ := linux.CgroupMode()
	cgVersion := "1"
	if mode == "v2" {
		cgVersion = "2"
	}
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	host, _ := os.Hostname()
	runtimes := map[string]any{}
	for _, h := range s.containers.Handlers(r.Context()) {
		name := h.Name
		if name == "" {
			name = "berth"
		}
		runtimes[name] = map[string]any{"path": name}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": "berth", "Name": host, "ServerVersion": s.version,
		"Containers": len(all), "ContainersRunning": running, "ContainersPaused": paused, "ContainersStopped": stopped,
		"Images": len(imgs), "Driver": "overlay2", "DockerRootDir": s.images.Snapshots().Root(),
		"CgroupDriver": "cgroupfs", "CgroupVersion": cgVersion, "KernelVersion": release,
		"OperatingSystem": "linux", "OSType": "linux", "Architecture": runtime.GOARCH, "NCPU": runtime.NumCPU(),
		"MemTotal": uint64(si.Totalram) * uint64(si.Unit), "DefaultRuntime": "berth", "Runtimes": runtimes,
		"SystemTime": time.Now().Format(time.RFC3339Nano), "LoggingDriver": "json-file",
	})
}

// systemDF is `docker system df`: images with their unpacked size and how
// many containers use each, containers with their writable layers,
// volumes with their size and users. Berth has no build cache.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.images.List()
	if err != nil {
		writeError(w, err)
		return
	}
	ctrs, _ := s.containers.ListOwned(Owner)
	users := map[string]int{}
	for _, c := range ctrs {
		users[c.ImageID]++
	}
	layers, _ := s.images.Snapshots().LayersUsage()
	outImages := []map[string]any{}
	for _, img := range imgs {
		var size int64
		for _, ch := range img.ChainIDs {
			if u, err := s.images.Snapshots().LayerUsage(digest.Digest(ch)); err == nil {
				size += int64(u.Bytes)
			}
		}
		outImages = append(outImages, map[string]any{"Id": img.ID, "RepoTags": nonNil(img.RepoTags), "RepoDigests": nonNil(img.RepoDigests),
			"Created": img.CreatedAt.Unix(), "Size": size, "SharedSize": -1, "Containers": users[img.ID], "Labels": imageLabels(img)})
	}
	outContainers := []map[string]any{}
	for _, c := range ctrs {
		rw := int64(0)
		if u, err := s.images.Snapshots().WritableUsage(c.ID); err == nil {
			rw = int64(u.Bytes)
		}
		outContainers = append(outContainers, map[string]any{"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": familiarName(c.ImageRef),
			"ImageID": c.ImageID, "Command": c.Annotations[annotationCmd], "Created": c.CreatedAt.Unix(), "State": dockerState(c),
			"Status": dockerStatus(c), "SizeRw": rw, "SizeRootFs": rw, "Labels": nonNilMap(c.Labels), "Mounts": []any{}})
	}
	used := s.volumesInUse()
	refs := map[string]int{}
	for name := range used {
		refs[name]++
	}
	outVolumes := []map[string]any{}
	ents, _ := os.ReadDir(s.volumeDir)
	for _, e := range ents {
		v, err := s.volumeJSON(e.Name())
		if err != nil {
			continue
		}
		size, _ := dirUsage(filepath.Join(s.volumeDir, e.Name()))
		v["UsageData"] = map[string]int64{"Size": int64(size), "RefCount": int64(refs[e.Name()])}
		outVolumes = append(outVolumes, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"LayersSize": layers.Bytes, "Images": outImages, "Containers": outContainers,
		"Volumes": outVolumes, "BuildCache": []any{}})
}
