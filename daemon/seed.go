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
// clones containers' mount namespaces from (oci/linux/seed_linux.go) and
// the mount view of stateDir it clones pods' files through
// (seed_view_linux.go), held open by berthd until close. env is what tells
// the runtime where they are: nothing until they are made (a restart
// answers first: making the seed copies the host's mounts once) or when
// they cannot be, and containers then copy the host's namespace as before.
func newMountSeed(stateDir string, log *slog.Logger) (env func() []string, close func()) {
	var mu sync.Mutex
	var held []*os.File
	var vars []string
	var closed bool
	go func() {
		start := time.Now()
		f, err := linux.NewMountSeed()
		if err != nil {
			log.Warn("no mount seed: each container's mount namespace copies the host's", slog.Any("error", err))
			return
		}
		got := []*os.File{f}
		found := []string{linux.MountSeedEnv + "=" + fdPath(f)}
		if v, mnt, err := linux.NewMountView(stateDir); err != nil {
			log.Info("no mount view: each container's clone of a pod's files scans the mounts beside them", slog.Any("error", err))
		} else {
			got = append(got, v)
			found = append(found, linux.MountViewEnv+"="+linux.MountViewValue(mnt, fdPath(v), stateDir))
		}
		log.Debug("mount seed made", slog.Duration("took", time.Since(start)))
		mu.Lock()
		defer mu.Unlock()
		if closed {
			for _, f := range got {
				f.Close()
			}
			return
		}
		held, vars = got, found
	}()
	env = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return vars
	}
	close = func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, f := range held {
			f.Close()
		}
	}
	return env, close
}

// fdPath is where another process opens f: berthd's /proc/<pid>/fd/<n>.
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()) }
