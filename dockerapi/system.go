package dockerapi

import (
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
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
		switch c.State {
		case store.ContainerRunning:
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
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": "berth", "Name": host, "ServerVersion": s.version,
		"Containers": len(all), "ContainersRunning": running, "ContainersPaused": paused, "ContainersStopped": stopped,
		"Images": len(imgs), "Driver": "overlay2", "DockerRootDir": s.images.Snapshots().Root(),
		"CgroupDriver": "cgroupfs", "CgroupVersion": cgVersion, "KernelVersion": release,
		"OperatingSystem": "linux", "OSType": "linux", "Architecture": runtime.GOARCH, "NCPU": runtime.NumCPU(),
		"MemTotal": uint64(si.Totalram) * uint64(si.Unit), "DefaultRuntime": "berth",
		"SystemTime": time.Now().Format(time.RFC3339Nano), "LoggingDriver": "json-file",
	})
}
