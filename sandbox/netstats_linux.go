package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
)

// Interface is a network interface's counters, as /proc/net/dev has them.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// NetworkStats reads the counters of the pod's interfaces but loopback;
// none for a pod on the node's network, whose traffic is the node's.
func (s *Service) NetworkStats(rec store.Sandbox) ([]Interface, error) {
	netns := rec.Namespaces["net"]
	if netns == "" {
		return nil, nil
	}
	type res struct {
		ifs []Interface
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// /proc/thread-self/net shows the calling thread's network
		// namespace. The thread goes back to the host's after, or, if it
		// cannot, stays locked and dies with the goroutine.
		runtime.LockOSThread()
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer host.Close()
		if err := enterNetns(netns); err != nil {
			ch <- res{nil, err}
			return
		}
		ifs, err := readNetDev("/proc/thread-self/net/dev")
		if unix.Setns(int(host.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- res{ifs, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("network stats of sandbox %s: %w", rec.ID, r.err)
	}
	return r.ifs, nil
}

// readNetDev parses /proc/net/dev: two header lines, then
// "name: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs drop ...".
func readNetDev(path string) ([]Interface, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Interface
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); line++ {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		if line < 2 || !ok || name == "lo" {
			continue
		}
		v := strings.Fields(rest)
		if len(v) < 12 {
			continue
		}
		n := func(i int) uint64 { x, _ := strconv.ParseUint(v[i], 10, 64); return x }
		out = append(out, Interface{Name: name,
			RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)})
	}
	return out, sc.Err()
}
