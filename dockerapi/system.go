package dockerapi

import (
	"net/http"
	"runtime"
	"time"

	"github.com/berth-runtime/berth/engine"
)

func (s *Server) routeSystem() {
	ping := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Ostype", "linux")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.buildkit != nil {
			w.Header().Set("Builder-Version", "2")
		} else {
			w.Header().Set("Builder-Version", "1")
		}
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
	writeJSON(w, http.StatusOK, map[string]any{
		"Platform":      map[string]string{"Name": "Berth"},
		"Version":       s.version,
		"ApiVersion":    MaxAPIVersion,
		"MinAPIVersion": MinAPIVersion,
		"Os":            "linux",
		"Arch":          runtime.GOARCH,
		"KernelVersion": engine.KernelVersion(),
		"GoVersion":     runtime.Version(),
		"BuildTime":     "",
		"Components": []map[string]any{
			{"Name": "Engine", "Version": s.version, "Details": map[string]string{"ApiVersion": MaxAPIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH}},
		},
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	in := s.engine.Info(r.Context())
	runtimes := map[string]any{}
	for _, name := range in.Runtimes {
		runtimes[name] = map[string]any{"path": name}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": "berth", "Name": engine.Hostname(), "ServerVersion": s.version,
		"Containers": in.Containers, "ContainersRunning": in.Running, "ContainersPaused": in.Paused, "ContainersStopped": in.Stopped,
		"Images": in.Images, "Driver": "overlay2", "DockerRootDir": in.RootDir,
		"CgroupDriver": "cgroupfs", "CgroupVersion": in.CgroupVersion, "KernelVersion": in.KernelVersion,
		"OperatingSystem": "linux", "OSType": "linux", "Architecture": runtime.GOARCH, "NCPU": in.NCPU,
		"MemTotal": in.MemTotal, "DefaultRuntime": "berth", "Runtimes": runtimes,
		"SystemTime": time.Now().Format(time.RFC3339Nano), "LoggingDriver": "json-file",
	})
}

// systemDF is `docker system df`.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	du, err := s.engine.DiskUsage()
	if err != nil {
		writeError(w, err)
		return
	}
	outImages := []map[string]any{}
	for _, u := range du.Images {
		img := u.Image
		outImages = append(outImages, map[string]any{"Id": img.ID, "RepoTags": engine.FamiliarNames(img.RepoTags), "RepoDigests": engine.FamiliarNames(img.RepoDigests),
			"Created": img.CreatedAt.Unix(), "Size": u.Size, "SharedSize": -1, "Containers": u.Containers, "Labels": engine.ImageLabels(img)})
	}
	outContainers := []map[string]any{}
	for _, u := range du.Containers {
		c := u.Container
		outContainers = append(outContainers, map[string]any{"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": engine.FamiliarName(c.ImageRef),
			"ImageID": c.ImageID, "Command": engine.Command(c), "Created": c.CreatedAt.Unix(), "State": engine.State(c),
			"Status": engine.Status(c), "SizeRw": u.SizeRw, "SizeRootFs": u.SizeRw, "Labels": nonNilMap(c.Labels), "Mounts": []any{}})
	}
	outVolumes := []map[string]any{}
	for _, u := range du.Volumes {
		v := volumeJSON(u.Volume)
		v["UsageData"] = map[string]int64{"Size": u.Size, "RefCount": int64(u.RefCount)}
		outVolumes = append(outVolumes, v)
	}
	cache, err := s.buildCacheJSON(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"LayersSize": du.LayersSize, "Images": outImages, "Containers": outContainers,
		"Volumes": outVolumes, "BuildCache": cache})
}
