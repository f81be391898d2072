package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/oci/linux"
)

// Check is one fact about the node: whether Berth can run pods on it.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	// Fix says what to do when Status is not ok.
	Fix string `json:"fix,omitempty"`
}

const (
	ok   = "ok"
	warn = "warn"
	fail = "fail"
)

// Checks looks at the node as cfg would run on it: kernel, cgroups, overlayfs,
// seccomp, user namespaces, CNI, iptables, runtime handlers, registry
// configuration and free disk. It changes nothing (the default CNI network is
// written under the state directory only by a running berthd).
func Checks(ctx context.Context, cfg config.Config) []Check {
	var out []Check
	add := func(name, status, detail, fix string) {
		out = append(out, Check{Name: name, Status: status, Detail: detail, Fix: fix})
	}

	release, major, _ := linux.KernelRelease()
	switch {
	case linux.KernelAtLeast(5, 12):
		add("kernel", ok, release, "")
	case major >= 4:
		add("kernel", warn, release+": no idmapped mounts (5.12), no cgroup.kill (5.14)", "a 5.15 or newer kernel")
	default:
		add("kernel", fail, release, "a 4.x or newer kernel")
	}

	if mode, ctrls, err := linux.CgroupMode(); err != nil {
		add("cgroups", fail, err.Error(), "mount cgroup2 at /sys/fs/cgroup")
	} else {
		need := []string{"cpu", "memory", "pids"}
		var missing []string
		for _, n := range need {
			if !slices.Contains(ctrls, n) {
				missing = append(missing, n)
			}
		}
		detail := mode + ": " + strings.Join(ctrls, " ")
		switch {
		case len(missing) > 0:
			add("cgroups", fail, detail, "enable the "+strings.Join(missing, ", ")+" controllers")
		case mode != "v2":
			add("cgroups", warn, detail, "cgroup v2 (systemd.unified_cgroup_hierarchy=1) is what most nodes run")
		default:
			add("cgroups", ok, detail, "")
		}
	}

	if fs, _ := os.ReadFile("/proc/filesystems"); bytes.Contains(fs, []byte("\toverlay\n")) {
		add("overlayfs", ok, "in the kernel", "")
	} else {
		add("overlayfs", fail, "not in /proc/filesystems", "modprobe overlay")
	}

	if b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail"); err == nil {
		add("seccomp", ok, strings.TrimSpace(string(b)), "")
	} else {
		add("seccomp", fail, "the kernel has no seccomp filters", "a kernel built with CONFIG_SECCOMP_FILTER")
	}

	if max, on := linux.UserNamespacesEnabled(); on {
		detail := "max " + max
		if linux.IDMappedOverlay() {
			add("user namespaces", ok, detail+"; idmapped mounts, overlayfs included", "")
		} else {
			add("user namespaces", warn, detail+"; no idmapped overlay mounts before 5.19", "a 5.19 or newer kernel for pods with user namespaces")
		}
	} else {
		add("user namespaces", warn, "off", "sysctl user.max_user_namespaces=15000")
	}

	m := cni.New(cni.Config{ConfDir: cfg.CNIConfDir, BinDirs: cfg.CNIBinDirs, CacheDir: os.TempDir(),
		DefaultDir: filepath.Join(os.TempDir(), "berth-check-cni"), DefaultSubnet: cfg.CNIDefaultSubnet, LookOnly: true}, slog.New(slog.DiscardHandler))
	if n, err := m.Current(); err != nil {
		add("CNI", fail, err.Error(), "install containernetworking-plugins, or fix the file named")
	} else if strings.HasPrefix(n.File, os.TempDir()) {
		add("CNI", ok, "no config in "+cfg.CNIConfDir+": the default "+cni.DefaultBridge+" bridge network on "+cfg.CNIDefaultSubnet, "")
	} else {
		add("CNI", ok, fmt.Sprintf("network %q from %s", n.Name(), n.File), "")
	}
	_ = os.RemoveAll(filepath.Join(os.TempDir(), "berth-check-cni"))

	if p, err := exec.LookPath("iptables"); err != nil {
		add("iptables", fail, "not on PATH", "apt-get install iptables (bridge masquerading and hostPorts need it)")
	} else {
		v, _ := exec.CommandContext(ctx, p, "--version").Output()
		add("iptables", ok, strings.TrimSpace(string(v)), "")
	}

	for _, name := range slices.Sorted(maps.Keys(cfg.Runtimes)) {
		bin := name
		if name == "berth" {
			bin = "berth-runtime"
		}
		p, err := findBinary(cfg.Runtimes[name].Path, bin)
		status := warn
		if name == cfg.DefaultRuntime {
			status = fail
		}
		if err != nil {
			add("runtime "+name, status, err.Error(), "install "+bin+", or drop [runtimes."+name+"]")
			continue
		}
		out, err := exec.CommandContext(ctx, p, "features").Output()
		var f struct {
			OCIVersionMax string `json:"ociVersionMax"`
		}
		if err != nil || json.Unmarshal(out, &f) != nil {
			add("runtime "+name, warn, p+": no `features` (an old runtime)", "a runtime that implements `features` (runc 1.1.3+)")
			continue
		}
		add("runtime "+name, ok, p+", OCI "+f.OCIVersionMax, "")
	}

	if n, err := images.CheckRegistryConfig(cfg.RegistryConfigDir); err != nil {
		add("registry config", fail, err.Error(), "fix the hosts.toml named")
	} else {
		add("registry config", ok, fmt.Sprintf("%d registries configured in %s", n, cfg.RegistryConfigDir), "")
	}

	dir := cfg.Root
	for dir != "/" {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		add("disk", fail, err.Error(), "")
	} else {
		free := st.Bavail * uint64(st.Bsize)
		detail := fmt.Sprintf("%.1f GiB free under %s", float64(free)/(1<<30), dir)
		switch {
		case free < 1<<30:
			add("disk", fail, detail, "free space for images: at least a few GiB")
		case free < 10<<30:
			add("disk", warn, detail, "10 GiB or more for images")
		default:
			add("disk", ok, detail, "")
		}
	}

	add("nri", ok, nriDetail(cfg.NRI), "")

	// Checkpoint/restore (CRI CheckpointContainer, CheckpointPod, RestorePod)
	// would need CRIU; Berth answers them Unimplemented either way.
	if p, err := exec.LookPath("criu"); err != nil {
		add("checkpoint", warn, "criu is not installed; CheckpointContainer, CheckpointPod and RestorePod answer Unimplemented", "")
	} else {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out2, err := exec.CommandContext(cctx, p, "check").CombinedOutput()
		cancel()
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(string(out2)), "\n")
			add("checkpoint", warn, "criu check fails ("+first+"); CheckpointContainer, CheckpointPod and RestorePod answer Unimplemented", "a kernel and CRIU that pass `criu check`")
		} else {
			add("checkpoint", warn, "criu check passes, but Berth does not drive CRIU: CheckpointContainer, CheckpointPod and RestorePod answer Unimplemented", "")
		}
	}
	return out
}

// PrintChecks writes the checks as a table and says whether one failed.
func PrintChecks(w io.Writer, checks []Check) (failed bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL\tFIX")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Status, c.Detail, c.Fix)
		failed = failed || c.Status == fail
	}
	tw.Flush()
	return failed
}

// cachedChecks runs Checks at most once a minute, for the CRI Status'
// verbose info, which kubelet does not ask for but crictl info does.
type cachedChecks struct {
	cfg config.Config
	mu  sync.Mutex
	at  time.Time
	val []Check
}

func (c *cachedChecks) get(ctx context.Context) []Check {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > time.Minute {
		c.val, c.at = Checks(ctx, c.cfg), time.Now()
	}
	return c.val
}
