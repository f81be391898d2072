// Command runtime benchmarks OCI runtimes side by side: `run` of /bin/true
// (create + start + wait + delete) for berth-runtime, runc and crun,
// interleaved round by round so that they share the machine's moods, and
// prints medians, p90 and each runtime's ratio to runc.
//
//	go run ./test/bench/runtime [-n 50]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-runtime/berth/oci/defaults"
)

func main() {
	n := flag.Int("n", 50, "iterations per runtime")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type runtimeBin struct{ name, path string }

func run(n int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	binDir := os.Getenv("BERTH_BIN_DIR")
	if binDir == "" {
		binDir = "bin"
	}
	rts := []runtimeBin{{"berth-runtime", filepath.Join(binDir, "berth-runtime")}}
	for _, r := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(r); err == nil {
			rts = append(rts, runtimeBin{r, p})
		}
	}
	work, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bundle := filepath.Join(work, "bundle")
	if err := busyboxRootfs(filepath.Join(bundle, "rootfs")); err != nil {
		return err
	}
	spec := defaults.DefaultSpec()
	spec.Process.Args = []string{"/bin/true"}
	spec.Hostname = ""
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		return err
	}

	times := map[string][]time.Duration{}
	// One warm-up each, then interleave.
	for i := -1; i < n; i++ {
		for _, rt := range rts {
			id := fmt.Sprintf("bench-%s-%d", rt.name, i+1)
			root := filepath.Join(work, "root-"+rt.name)
			start := time.Now()
			cmd := exec.Command(rt.path, "--root", root, "run", "--bundle", bundle, id)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s run: %v: %s", rt.name, err, stderr.String())
			}
			if i >= 0 {
				times[rt.name] = append(times[rt.name], time.Since(start))
			}
		}
	}
	report("run /bin/true (create+start+wait+delete)", n, rts, times)

	// exec of /bin/true into a running container of each runtime.
	spec.Process.Args = []string{"sleep", "1000"}
	b, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	for _, rt := range rts {
		root := filepath.Join(work, "root-"+rt.name)
		cmd := exec.Command(rt.path, "--root", root, "run", "--detach", "--bundle", bundle, "bench-exec-"+rt.name)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s run --detach: %v", rt.name, err)
		}
		defer exec.Command(rt.path, "--root", root, "delete", "--force", "bench-exec-"+rt.name).Run()
	}
	execTimes := map[string][]time.Duration{}
	for i := -1; i < n; i++ {
		for _, rt := range rts {
			root := filepath.Join(work, "root-"+rt.name)
			start := time.Now()
			out, err := exec.Command(rt.path, "--root", root, "exec", "bench-exec-"+rt.name, "/bin/true").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s exec: %v: %s", rt.name, err, out)
			}
			if i >= 0 {
				execTimes[rt.name] = append(execTimes[rt.name], time.Since(start))
			}
		}
	}
	report("exec /bin/true into a running container", n, rts, execTimes)
	for _, rt := range rts {
		for _, c := range []string{"memory", "cpu,cpuacct", "pids", "blkio", "devices", "freezer", "cpuset", "hugetlb", "systemd"} {
			matches, _ := filepath.Glob("/sys/fs/cgroup/" + c + "/bench-*" + rt.name + "*")
			for _, m := range matches {
				_ = os.Remove(m)
			}
		}
	}
	return nil
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func report(title string, n int, rts []runtimeBin, times map[string][]time.Duration) {
	fmt.Printf("\n%s, %d iterations each, interleaved\n", title, n)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "runtime\tmedian\tp90\tmedian/runc\t")
	base := times["runc"]
	for _, rt := range rts {
		t := times[rt.name]
		ratio := "-"
		if len(base) > 0 {
			ratio = fmt.Sprintf("%.2f", float64(pct(t, 0.5))/float64(pct(base, 0.5)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", rt.name, pct(t, 0.5).Round(10*time.Microsecond), pct(t, 0.9).Round(10*time.Microsecond), ratio)
	}
	tw.Flush()
}

// busyboxRootfs makes a minimal rootfs from the static busybox.
func busyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("needs busybox-static: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(dir, "bin", a))
		}
	}
	return nil
}
