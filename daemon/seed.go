package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/berth-runtime/berth/oci/linux"
)

// newMountSeed makes, in the background, the mount seed berth-runtime
// clones containers' mount namespaces from (oci/linux/seed_linux.go), held
// open by berthd until close. path says where the runtime opens it; ""
// until it is made (a restart answers first: making it copies the host's
// mounts once) or when it cannot be, and containers then copy the host's
// namespace as before.
func newMountSeed(log *slog.Logger) (path func() string, close func()) {
	var mu sync.Mutex
	var seed *os.File
	var at string
	var closed bool
	go func() {
		start := time.Now()
		f, err := linux.NewMountSeed()
		if err != nil {
			log.Warn("no mount seed: each container's mount namespace copies the host's", slog.Any("error", err))
			return
		}
		log.Debug("mount seed made", slog.Duration("took", time.Since(start)))
		mu.Lock()
		defer mu.Unlock()
		if closed {
			f.Close()
			return
		}
		seed, at = f, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
	}()
	path = func() string {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
	close = func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		if seed != nil {
			seed.Close()
		}
	}
	return path, close
}
