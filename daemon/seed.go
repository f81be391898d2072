package daemon

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/berth-runtime/berth/oci/linux"
)

// newMountSeed makes the mount seed berth-runtime clones containers' mount
// namespaces from (oci/linux/seed_linux.go), held open by berthd until
// close, and returns the path the runtime opens it by; "" when there is
// none, and containers copy the host's namespace as before.
func newMountSeed(log *slog.Logger) (path string, close func()) {
	seed, err := linux.NewMountSeed()
	if err != nil {
		log.Warn("no mount seed: each container's mount namespace copies the host's", slog.Any("error", err))
		return "", func() {}
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), seed.Fd()), func() { seed.Close() }
}
