package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/test/fixtures"
)

// bigTar is a layer of two files of incompressible bytes under /big.
func bigTar(t *testing.T, size int) (tarData []byte, data, other []byte) {
	data, other = make([]byte, size), make([]byte, size/4)
	rng := rand.NewChaCha8([32]byte{2})
	rng.Read(data)
	rng.Read(other)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Name: "big/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
	for name, b := range map[string][]byte{"big/data": data, "big/other": other} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: mt})
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes(), data, other
}

// fuseMountsUnder lists the lazy layers' FUSE mounts under dir.
func fuseMountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "fuse.berth" && strings.HasPrefix(f[4], dir+"/") {
				out = append(out, f[4])
			}
		}
	}
	return out
}

// gate holds back the background stream (the whole-blob request) of one
// blob ("": of every blob) until opened, so that a test sees what runs
// before a layer is whole.
type gate struct {
	blob string
	open chan struct{}
	once sync.Once
}

func (g *gate) handler(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if strings.Contains(r.URL.Path, "/blobs/"+g.blob) && strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
	}
	next.ServeHTTP(w, r)
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// An eStargz image is mounted lazily: its container runs, reading a layer
// that is not yet fetched whole; it keeps running, and its layer keeps
// being served, across a berthd killed and started again; the layer is
// then stored whole; removing the image stops its servers and leaves no mount.
func TestLazyPull(t *testing.T) {
	d := startDaemon(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/lazy")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	tarData, data, other := bigTar(t, 12<<20)
	img := fixtures.EStargzImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}, tarData)
	layers, _ := img.Layers()
	bigDigest, _ := layers[1].Digest()
	g := &gate{blob: bigDigest.String(), open: make(chan struct{})}
	defer g.release()
	host := fixtures.Front(t, fixtures.Registry(t), nil, g.handler)
	ref := fixtures.Push(t, img, host, "lazy/big:1")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	servers := processesMentioning("berth-lazyfs --dir " + d.root)
	if m := fuseMountsUnder(d.root); len(m) != 2 || len(servers) != 2 {
		t.Fatalf("after the pull: lazy mounts %v, servers %v; want two of each (both layers are eStargz)", m, servers)
	}
	blobPath := filepath.Join(d.root, "content", "blobs", "sha256", strings.TrimPrefix(bigDigest.String(), "sha256:"))
	if st, err := d.rs.Status(ctx, true); err != nil || !strings.Contains(st.GetInfo()["lazyPulls"], `"layers":2,"served":2`) {
		t.Errorf("crictl info's lazyPulls: %q, %v; want two layers served", st.GetInfo()["lazyPulls"], err)
	}

	logDir := filepath.Join(d.dir, "pods", "lazy")
	pod := podConfig("lazy", logDir)
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sh", "-c", "sha256sum /big/data; echo started; exec sleep 1000"}, LogPath: "c.log",
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	var log []byte
	for deadline := time.Now().Add(60 * time.Second); !bytes.Contains(log, []byte("started")) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		log, _ = os.ReadFile(filepath.Join(logDir, "c.log"))
	}
	if want := fmt.Sprintf("%x  /big/data", sha256.Sum256(data)); !strings.Contains(string(log), want) {
		t.Fatalf("container log %q, want %q", log, want)
	}
	if _, err := os.Stat(blobPath); err == nil {
		t.Fatal("the big layer was stored whole before its container ran: the pull was not lazy")
	}

	// berthd killed and started again: the container and its layers' servers run on.
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
	d.start(fixtures.Binaries(t))
	if after := processesMentioning("berth-lazyfs --dir " + d.root); strings.Join(after, ",") != strings.Join(servers, ",") {
		t.Errorf("lazy servers after the restart %v, before %v: want the same processes", after, servers)
	}
	out, _, err := d.rs.ExecSync(ctx, cid, []string{"sha256sum", "/big/other"}, 30*time.Second)
	if want := fmt.Sprintf("%x  /big/other", sha256.Sum256(other)); err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("exec after the restart: %q, %v; want %q", out, err, want)
	}

	// docker save needs every byte: berthd fetches the blob the stream has
	// not brought yet (the gate holds the stream only), and the archive has it.
	if _, err := exec.LookPath("docker"); err == nil {
		archive := filepath.Join(t.TempDir(), "big.tar")
		mustDocker(t, d, "save", "-o", archive, ref)
		if got := blobInArchive(t, archive, bigDigest.String()); got != bigDigest.String() {
			t.Fatalf("docker save of a lazily pulled image: the big layer's blob has digest %q in the archive", got)
		}
	} else {
		t.Log("no docker CLI: docker save of the lazy image is not tried")
	}
	g.release()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(blobPath); err == nil {
			break
		}
	}
	if b, err := os.ReadFile(blobPath); err != nil || fmt.Sprintf("sha256:%x", sha256.Sum256(b)) != bigDigest.String() {
		t.Fatalf("the big layer's blob in the content store: %v", err)
	}

	if err := d.rs.StopContainer(ctx, cid, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if err := d.is.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: ref}); err != nil {
		t.Fatal(err)
	}
	if m := fuseMountsUnder(d.root); len(m) > 0 {
		t.Errorf("lazy mounts left after the image's removal: %v", m)
	}
	if p := processesMentioning("berth-lazyfs --dir " + d.root); len(p) > 0 {
		t.Errorf("lazy servers left after the image's removal: %v", p)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.root, "snapshots", "lazy")); len(ents) > 0 {
		t.Errorf("lazy layers' directories left: %d", len(ents))
	}
	if b, _ := os.ReadFile(d.logFile); strings.Contains(string(b), "a lazy layer's server ended") {
		t.Errorf("berthd took the servers it stopped for lost ones")
	}
	assertNothingLeft(t, d)
}

// blobInArchive returns the digest of the bytes the archive holds for blob d ("" if none).
func blobInArchive(t *testing.T, archive, d string) string {
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return ""
		}
		if h.Name == "blobs/sha256/"+strings.TrimPrefix(d, "sha256:") {
			b, _ := io.ReadAll(tr)
			return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		}
	}
}

// With lazy_pulls off, an eStargz image is pulled whole, as any image.
func TestLazyPullsOff(t *testing.T) {
	d := startDaemonWith(t, "lazy_pulls = false\n")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/whole")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	tarData, data, _ := bigTar(t, 1<<20)
	ref := fixtures.Push(t, fixtures.EStargzImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}, tarData), fixtures.Registry(t), "lazy/whole:1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	out, code := runEcho(t, d, ref, "whole", "", "sha256sum", "/big/data")
	if want := fmt.Sprintf("%x  /big/data", sha256.Sum256(data)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("container: exit %d, log %q; want %q", code, out, want)
	}
	if m := fuseMountsUnder(d.root); len(m) > 0 {
		t.Errorf("lazy mounts with lazy_pulls off: %v", m)
	}
	if st, err := d.rs.Status(ctx, true); err != nil || !strings.Contains(st.GetInfo()["lazyPulls"], `"off":"lazy_pulls is false"`) {
		t.Errorf("crictl info's lazyPulls: %q, %v; want them off, and why", st.GetInfo()["lazyPulls"], err)
	}
}

// Lazy layers whose servers are gone (a reboot, a crash) are served again
// when berthd starts, and their images run.
func TestLazyLayerServedAgain(t *testing.T) {
	d := startDaemon(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/again")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	tarData, data, _ := bigTar(t, 1<<20)
	// The streams held back: layers not yet whole are served again (whole
	// ones are unpacked instead: TestLazyLayerUnpackedWhenWhole).
	g := &gate{open: make(chan struct{})}
	defer g.release()
	host := fixtures.Front(t, fixtures.Registry(t), nil, g.handler)
	ref := fixtures.Push(t, fixtures.EStargzImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}, tarData), host, "lazy/again:1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	before := processesMentioning("berth-lazyfs --dir " + d.root)
	for _, p := range before {
		pid, _, _ := strings.Cut(p, ":")
		var n int
		fmt.Sscan(pid, &n)
		_ = syscall.Kill(n, syscall.SIGKILL)
	}
	if len(before) != 2 {
		t.Fatalf("lazy servers before: %v, want 2", before)
	}
	d.start(fixtures.Binaries(t))
	if after := processesMentioning("berth-lazyfs --dir " + d.root); len(after) != 2 {
		t.Fatalf("lazy servers after berthd's start: %v, want 2 new ones", after)
	}
	out, code := runEcho(t, d, ref, "again", "", "sha256sum", "/big/data")
	if want := fmt.Sprintf("%x  /big/data", sha256.Sum256(data)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("container: exit %d, log %q; want %q", code, out, want)
	}
}

// A pod in a user namespace runs on lazy layers as on unpacked ones: they
// are stacked idmapped, so the namespace's root owns the image's files.
func TestLazyPullUserNamespace(t *testing.T) {
	if !linux.IDMappedOverlay() {
		t.Skip("this kernel cannot idmap overlayfs layers (5.19) or has user namespaces off")
	}
	d := startDaemon(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	tarData, data, _ := bigTar(t, 1<<20)
	ref := fixtures.Push(t, fixtures.EStargzImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}, tarData), fixtures.Registry(t), "lazy/userns:1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := fuseMountsUnder(d.root); len(m) != 2 {
		t.Fatalf("lazy mounts %v, want 2", m)
	}
	logDir := filepath.Join(d.dir, "pods", "lazyuserns")
	pod := podConfig("lazyuserns", logDir)
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: usernsMapping, Gids: usernsMapping},
	}}
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sh", "-c", "cat /proc/self/uid_map; stat -c %u:%g /bin/busybox; sha256sum /big/data"}, LogPath: "c.log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: pod.Linux.SecurityContext.NamespaceOptions}},
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if st := waitExited(t, d, cid); st.ExitCode != 0 {
		b, _ := os.ReadFile(filepath.Join(logDir, "c.log"))
		t.Fatalf("exit %d: %s", st.ExitCode, b)
	}
	b, _ := os.ReadFile(filepath.Join(logDir, "c.log"))
	for _, want := range []string{"196608", " 0:0\n", fmt.Sprintf("%x  /big/data", sha256.Sum256(data))} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("log %q lacks %q", b, want)
		}
	}
	d.removeAllPods()
}

// A layer that cannot be served lazily — here its manifest names another
// table of contents than the blob's — is pulled whole, and the image runs.
func TestLazyPullFallsBack(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/fallback")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	tarData, data, _ := bigTar(t, 1<<20)
	base := fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}})
	l, _ := fixtures.EStargzLayer(t, tarData)
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, Annotations: map[string]string{
		"containerd.io/snapshot/stargz/toc.digest": "sha256:" + strings.Repeat("ab", 32)}})
	if err != nil {
		t.Fatal(err)
	}
	ref := fixtures.Push(t, img, fixtures.Registry(t), "lazy/fallback:1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := fuseMountsUnder(d.root); len(m) > 0 {
		t.Errorf("a layer whose TOC does not match is mounted lazily: %v", m)
	}
	if b, _ := os.ReadFile(d.logFile); !strings.Contains(string(b), "invalid TOC JSON") {
		t.Errorf("berthd's log does not say why the layer was pulled whole")
	}
	out, code := runEcho(t, d, ref, "fallback", "", "sha256sum", "/big/data")
	if want := fmt.Sprintf("%x  /big/data", sha256.Sum256(data)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("container: exit %d, log %q; want %q", code, out, want)
	}
}

// A lazy layer whose server is gone at berthd's start (a reboot) but whose
// blob its server had streamed whole is unpacked as any layer: no server,
// no mount; its image runs.
func TestLazyLayerUnpackedWhenWhole(t *testing.T) {
	d := startDaemon(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/whole-again")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	tarData, data, _ := bigTar(t, 1<<20)
	img := fixtures.EStargzImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}, tarData)
	ref := fixtures.Push(t, img, fixtures.Registry(t), "lazy/whole-again:1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		h, _ := l.Digest()
		p := filepath.Join(d.root, "content", "blobs", "sha256", h.Hex)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(p); err == nil {
				break
			}
		}
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	servers := processesMentioning("berth-lazyfs --dir " + d.root)
	for _, p := range servers {
		pid, _, _ := strings.Cut(p, ":")
		var n int
		fmt.Sscan(pid, &n)
		_ = syscall.Kill(n, syscall.SIGKILL)
	}
	if len(servers) != 2 {
		t.Fatalf("lazy servers before: %v, want 2", servers)
	}
	d.start(fixtures.Binaries(t))
	if p := processesMentioning("berth-lazyfs --dir " + d.root); len(p) > 0 {
		t.Errorf("servers after berthd's start: %v; want none (the layers are whole)", p)
	}
	if m := fuseMountsUnder(d.root); len(m) > 0 {
		t.Errorf("lazy mounts after berthd's start: %v", m)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.root, "snapshots", "lazy")); len(ents) > 0 {
		t.Errorf("lazy layers' directories left: %d", len(ents))
	}
	out, code := runEcho(t, d, ref, "whole-again", "", "sha256sum", "/big/data")
	if want := fmt.Sprintf("%x  /big/data", sha256.Sum256(data)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("container: exit %d, log %q; want %q", code, out, want)
	}
}

// crictl info answers while a lazy layer's server hangs (here: stopped):
// berthd never asks a lazy mount itself whether it is served; a server
// that dies is reported in berthd's log.
func TestLazyStatusWithAHungServer(t *testing.T) {
	d := startDaemon(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	tarData, _, _ := bigTar(t, 1<<20)
	ref := fixtures.Push(t, fixtures.EStargzImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}, tarData), fixtures.Registry(t), "lazy/hung:1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range processesMentioning("berth-lazyfs --dir " + d.root) {
		pid, _, _ := strings.Cut(p, ":")
		var n int
		fmt.Sscan(pid, &n)
		pids = append(pids, n)
		_ = syscall.Kill(n, syscall.SIGSTOP)
	}
	defer func() {
		for _, n := range pids {
			_ = syscall.Kill(n, syscall.SIGCONT)
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	st, err := d.rs.Status(sctx, true)
	if err != nil {
		t.Fatalf("crictl info with the lazy servers stopped: %v", err)
	}
	if !strings.Contains(st.GetInfo()["lazyPulls"], `"layers":2,"served":2`) {
		t.Errorf("lazyPulls: %q", st.GetInfo()["lazyPulls"])
	}
	// A server lost while berthd runs is reported, loudly, and counted.
	_ = syscall.Kill(pids[0], syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(d.logFile); strings.Contains(string(b), "a lazy layer's server ended") {
			break
		}
	}
	if b, _ := os.ReadFile(d.logFile); !strings.Contains(string(b), "level=ERROR msg=\"a lazy layer's server ended") {
		t.Errorf("berthd's log does not report the lost server")
	}
	if st, err := d.rs.Status(ctx, true); err != nil || !strings.Contains(st.GetInfo()["lazyPulls"], `"layers":2,"served":1`) {
		t.Errorf("lazyPulls after a server's loss: %q, %v", st.GetInfo()["lazyPulls"], err)
	}
}
