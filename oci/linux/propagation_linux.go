package linux

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/mountinfo"
)

// parentMountPrivate makes the mount that holds path private if it is shared.
func parentMountPrivate(path string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	best, shared := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, _, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 {
			continue
		}
		mnt := mountinfo.Unescape(fields[4])
		if (path == mnt || strings.HasPrefix(path, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) >= len(best) {
			best, shared = mnt, false
			for _, opt := range fields[6:] {
				if strings.HasPrefix(opt, "shared:") {
					shared = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if best == "" || !shared {
		return nil
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}
