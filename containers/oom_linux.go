package containers

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// oomClamp keeps requested oom_score_adj values within what this daemon may
// set. Without CAP_SYS_RESOURCE a process cannot go below its own value
// (kubelet asks -998 for sandboxes and -997 for guaranteed pods), so such
// requests are raised to berthd's own, and that is logged once, as
// containerd's restrict_oom_score_adj does; a pod never fails for it.
type oomClamp struct {
	min  int // the lowest allowed value
	once sync.Once
	log  *slog.Logger
}

func newOOMClamp(log *slog.Logger) *oomClamp {
	c := &oomClamp{min: -1000, log: log}
	if !hasCapSysResource() {
		c.min = ownOOMScoreAdj()
	}
	return c
}

func (c *oomClamp) clamp(v int) int {
	if v >= c.min {
		return v
	}
	c.once.Do(func() {
		c.log.Warn("berthd lacks CAP_SYS_RESOURCE: raising oom_score_adj requests below its own to its own",
			slog.Int("requested", v), slog.Int("applied", c.min))
	})
	return c.min
}

func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0
}

func ownOOMScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}
