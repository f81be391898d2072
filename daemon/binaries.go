package daemon

// The binaries berthd starts: its shims, the runtimes, berth-lazyfs.

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/config"
)

// lazyServer is the berth-lazyfs binary when lazy pulls are on and this
// machine can serve them; else "" and why (eStargz layers are then pulled
// whole).
func lazyServer(cfg config.Config, log *slog.Logger) (bin, off string) {
	if !cfg.LazyPulls {
		return "", "lazy_pulls is false"
	}
	bin, err := findBinary(cfg.LazyFSPath, "berth-lazyfs")
	if err == nil {
		_, err = os.Stat("/dev/fuse")
	}
	if err != nil {
		log.Warn("lazy pulls are off: eStargz layers are pulled whole", slog.Any("reason", err))
		return "", err.Error()
	}
	return bin, ""
}

// findBinary returns configured, else name beside berthd, else name on PATH.
func findBinary(configured, name string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return configured, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("cannot find %s beside berthd or on PATH", name)
	}
	return p, nil
}

// resolveRuntimes finds each handler's binary; handlers whose binary is not
// installed are left out with a note, except the default, which must exist.
func resolveRuntimes(cfg config.Config, log *slog.Logger) (map[string]containers.Runtime, error) {
	out := map[string]containers.Runtime{}
	for name, r := range cfg.Runtimes {
		bin := name
		if name == "berth" {
			bin = "berth-runtime"
		}
		p, err := findBinary(r.Path, bin)
		if err != nil {
			if name == cfg.DefaultRuntime {
				return nil, fmt.Errorf("default runtime %q: %w", name, err)
			}
			log.Info("runtime handler unavailable", slog.String("handler", name), slog.Any("reason", err))
			continue
		}
		out[name] = containers.Runtime{Name: name, Path: p}
	}
	return out, nil
}
