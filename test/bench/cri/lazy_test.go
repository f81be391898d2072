package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// lazyImageFiles × lazyFileBytes is the large layer of BenchmarkLazyPull's
// image: incompressible bytes, so that the blob is as large (~500 MB).
const (
	lazyImageFiles = 20
	lazyFileBytes  = 25 << 20
)

// BenchmarkLazyPull: time from PullImage to the first line a container of
// a ~500 MB eStargz image writes (busybox's echo, which reads busybox
// only), for berthd mounting the layers lazily, berthd pulling them whole
// (lazy_pulls = false) and containerd 1.6 (no stargz snapshotter: whole),
// interleaved, the image removed after each round.
func BenchmarkLazyPull(b *testing.B) {
	fixtures.RequireRoot(b)
	fixtures.RequireBinary(b, "containerd")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	host := fixtures.Registry(b)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	rng := rand.NewChaCha8([32]byte{5})
	data := make([]byte, lazyFileBytes)
	tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755})
	for i := 0; i < lazyImageFiles; i++ {
		rng.Read(data)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/f%02d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	img := fixtures.EStargzImage(b, fixtures.ImageConfig{Cmd: []string{"echo", "first line"}}, tarBuf.Bytes())
	tarBuf = bytes.Buffer{}
	var size int64
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	ref := fixtures.Push(b, img, host, "bench/lazy:1")

	targets, stop := startTargets(b, "lazy", host)
	defer stop()
	whole := filepath.Join(targets[0].dir+"-whole", "config.toml")
	os.MkdirAll(filepath.Dir(whole), 0o755)
	os.WriteFile(whole, []byte("lazy_pulls = false\n"), 0o644)
	wt := startBerthdNamed(b, filepath.Dir(targets[0].dir), "berthd-whole", "--metrics-address", "", "--config", whole)
	defer stopTarget(wt)
	targets = append([]*target{targets[0], wt}, targets[1:]...)
	targets[0].name = "berthd-lazy"
	defer func() {
		for _, t := range targets {
			for _, p := range pidsNamed("berth-lazyfs", t.dir) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}()

	const rounds = 3
	times := map[string][]time.Duration{}
	for r := 0; r < rounds; r++ {
		order := append(append([]*target{}, targets[r%len(targets):]...), targets[:r%len(targets)]...)
		fmt.Printf("round %d:", r)
		for _, t := range order {
			syncDisk(b)
			d := firstLine(b, t, ref, fmt.Sprintf("lazy%d", r))
			times[t.name] = append(times[t.name], d)
			fmt.Printf(" %s %s", t.name, ms(d))
			if servers := pidsNamed("berth-lazyfs", t.dir); len(servers) > 0 {
				var rss []string
				for _, p := range servers {
					kb, _ := memKB(p)
					rss = append(rss, fmt.Sprintf("%d (anonymous %d)", kb, anonKB(p)))
				}
				fmt.Printf(" (%d berth-lazyfs, RSS kB %v)", len(servers), rss)
			}
			_ = t.is.RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: ref})
		}
		fmt.Println()
	}
	fmt.Printf("\npull to a container's first line of output, a %.0f MB eStargz image (%d files of %d MB and busybox), %d rounds, interleaved\n",
		float64(size)/1e6, lazyImageFiles, lazyFileBytes>>20, rounds)
	tw2 := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw2, "\tmedian\tmin\tmax\tmedian/berthd-whole\tmedian/containerd\t")
	for _, t := range targets {
		d := times[t.name]
		fmt.Fprintf(tw2, "%s\t%s\t%s\t%s\t%.3f\t%.3f\t\n", t.name, ms(pct(d, .5)), ms(pct(d, 0)), ms(pct(d, 1)),
			float64(pct(d, .5))/float64(pct(times["berthd-whole"], .5)), float64(pct(d, .5))/float64(pct(times["containerd"], .5)))
	}
	tw2.Flush()
}

// anonKB is a process's anonymous memory (heap, stacks), the part of its
// RSS that is its own: the rest is its binary's pages, shared.
func anonKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Anonymous:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// firstLine pulls ref, runs it in a pod and returns how long until its log
// has a line; the pod is removed after.
func firstLine(b *testing.B, t *target, ref, name string) time.Duration {
	ctx := context.Background()
	pod := podConfig(t, name)
	s := time.Now()
	if _, err := t.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		b.Fatalf("%s pull: %v", t.name, err)
	}
	podID, err := t.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		b.Fatalf("%s RunPodSandbox: %v", t.name, err)
	}
	defer func() {
		_ = t.rs.StopPodSandbox(ctx, podID)
		_ = t.rs.RemovePodSandbox(ctx, podID)
	}()
	cid, err := t.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref}, LogPath: "c.log",
	}, pod)
	if err != nil {
		b.Fatalf("%s CreateContainer: %v", t.name, err)
	}
	if err := t.rs.StartContainer(ctx, cid); err != nil {
		b.Fatalf("%s StartContainer: %v", t.name, err)
	}
	log := filepath.Join(pod.LogDirectory, "c.log")
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if l, _ := os.ReadFile(log); bytes.Contains(l, []byte("first line")) {
			return time.Since(s)
		}
	}
	b.Fatalf("%s: no line in %s after 5 minutes", t.name, log)
	return 0
}
