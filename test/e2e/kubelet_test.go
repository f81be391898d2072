package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// kubeDir holds the binaries test/kube/build.sh builds: etcd, kube-apiserver,
// kubelet, kubectl.
func kubeDir(t *testing.T) string {
	dir := os.Getenv("BERTH_KUBE_DIR")
	if dir == "" {
		dir = "/var/cache/berth-kube/v1.37.2"
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kubelet", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("needs Kubernetes' binaries in %s (test/kube/build.sh builds them; make test does): %v", dir, err)
		}
	}
	return dir
}

// cluster is a one-node Kubernetes on berthd: etcd, kube-apiserver and a
// kubelet, all on 127.0.0.1, each a process of the test's, stopped by PID.
type cluster struct {
	t          *testing.T
	bin, dir   string
	kubeconfig string
	node       string
}

func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if c.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			c.t.Logf("%s log (its end):\n%s", name, tail(b, 6000))
		}
	})
}

// kubectl runs kubectl against the cluster and returns its output.
func (c *cluster) kubectl(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// waitKube polls kubectl until its output, trimmed, is want.
func (c *cluster) waitKube(what, want string, timeout time.Duration, args ...string) {
	c.t.Helper()
	var out string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var err error
		if out, err = c.kubectl(args...); err == nil && strings.TrimSpace(out) == want {
			return
		}
	}
	c.t.Fatalf("%s: kubectl %s: %q, want %q", what, strings.Join(args, " "), out, want)
}

// startCluster brings up etcd, kube-apiserver and a kubelet whose runtime is d.
func startCluster(t *testing.T, d *daemon) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: kubeDir(t), dir: filepath.Join(d.dir, "kube"), node: "berth-node"}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Below the ephemeral range: a port the kernel handed out and the test
	// let go of may be any connection's source port by the time kubelet,
	// seconds later, binds it (it was, once: "bind: address already in use").
	base := fixtures.FreePortRun(t, 4)
	etcdClient, etcdPeer, apiPort, kubeletPort := base, base+1, base+2, base+3
	c.start("etcd", "--name", "berth", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-cluster", fmt.Sprintf("berth=http://127.0.0.1:%d", etcdPeer), "--listen-metrics-urls", "")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	saKey, saPub := filepath.Join(c.dir, "sa.key"), filepath.Join(c.dir, "sa.pub")
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	os.WriteFile(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	tokens := filepath.Join(c.dir, "tokens.csv")
	os.WriteFile(tokens, []byte("berth-e2e-token,admin,admin,system:masters\n"), 0o600)
	gates := "ContainerStopSignals=true"
	c.start("kube-apiserver", "--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", fmt.Sprint(apiPort),
		"--cert-dir", filepath.Join(c.dir, "apiserver"), "--service-cluster-ip-range", "10.254.0.0/24",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey, "--authorization-mode", "AlwaysAllow", "--token-auth-file", tokens,
		"--disable-admission-plugins", "ServiceAccount", "--enable-priority-and-fairness=false", "--feature-gates", gates,
		// The kubernetes Service would need a non-loopback address; no pod here uses it.
		"--endpoint-reconciler-type", "none")
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	os.WriteFile(c.kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: berth, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: berth-e2e-token}}]
contexts: [{name: berth, context: {cluster: berth, user: admin}}]
current-context: berth
`, apiPort)), 0o600)
	c.waitKube("kube-apiserver ready", "ok", 90*time.Second, "get", "--raw", "/readyz")

	kcfg := filepath.Join(c.dir, "kubelet.yaml")
	os.WriteFile(kcfg, []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
cgroupDriver: cgroupfs
cgroupRoot: /berth-kube
failSwapOn: false
failCgroupV1: false
enforceNodeAllocatable: []
evictionHard: {memory.available: "0%%", nodefs.available: "0%%", imagefs.available: "0%%", nodefs.inodesFree: "0%%"}
imageGCHighThresholdPercent: 100
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%s
featureGates: {ContainerStopSignals: true}
resolvConf: /etc/resolv.conf
serializeImagePulls: false
podLogsDir: %s
`, kubeletPort, d.socket, filepath.Join(c.dir, "pod-logs"))), 0o600)
	// The kubelet wants its cgroup root made, in every hierarchy.
	fixtures.RemoveCgroupOnCleanup(t, "/berth-kube")
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range append(hierarchies, "/sys/fs/cgroup") {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err == nil {
			_ = os.Mkdir(filepath.Join(h, "berth-kube"), 0o755)
		}
	}
	// The kubelet's device plugin socket is at a fixed path, whatever its
	// root: gone with it if the test made it (cleanups run last first).
	if _, err := os.Stat("/var/lib/kubelet"); os.IsNotExist(err) {
		t.Cleanup(func() { _ = os.RemoveAll("/var/lib/kubelet") })
	}
	c.start("kubelet", "--kubeconfig", c.kubeconfig, "--config", kcfg, "--root-dir", filepath.Join(c.dir, "kubelet"),
		"--cert-dir", filepath.Join(c.dir, "kubelet-pki"), "--hostname-override", c.node, "--node-ip", "127.0.0.1", "--v", "2")
	t.Cleanup(func() {
		// What the kubelet mounted under its root (pod volumes) goes with it.
		for _, m := range mountsUnder(filepath.Join(c.dir, "kubelet")) {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	})
	c.waitKube("node Ready", "True", 120*time.Second, "get", "node", c.node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	return c
}

// TestKubelet: a real kubelet (v1.37, built by test/kube/build.sh) with
// its API server runs a pod on berthd; `kubectl patch --subresource resize`
// changes its CPU and memory in place (the container's cgroup and the pod's
// status show the new values, the container is not restarted); deleting the
// pod stops the container with its lifecycle.stopSignal (SIGUSR1, trapped).
func TestKubelet(t *testing.T) {
	kubeDir(t)
	d := startDaemon(t)
	ref := pulledBusybox(t, d)
	c := startCluster(t, d)
	out := filepath.Join(d.dir, "kube", "out")
	os.MkdirAll(out, 0o755)
	manifest := filepath.Join(c.dir, "pod.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: resize, namespace: default}
spec:
  nodeName: %s
  os: {name: linux}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 30
  volumes: [{name: out, hostPath: {path: %s}}]
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", "trap 'echo USR1 > /out/signal; exit 0' USR1; while true; do sleep 0.2; done"]
    volumeMounts: [{name: out, mountPath: /out}]
    lifecycle: {stopSignal: SIGUSR1}
    resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}, {resourceName: memory, restartPolicy: NotRequired}]
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 100m, memory: 64Mi}
`, c.node, out, ref)), 0o600)
	if o, err := c.kubectl("apply", "-f", manifest); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, o)
	}
	c.waitKube("pod running", "Running", 120*time.Second, "get", "pod", "resize", "-o", "jsonpath={.status.phase}")
	cidOut, _ := c.kubectl("get", "pod", "resize", "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	cid := strings.TrimPrefix(strings.TrimSpace(cidOut), "berth://")
	memLimit := func() string {
		o, _, err := d.rs.ExecSync(context.Background(), cid, []string{"sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"}, 10*time.Second)
		if err != nil {
			t.Fatalf("exec in %s: %v", cid, err)
		}
		return strings.TrimSpace(string(o))
	}
	if got := memLimit(); got != "67108864" {
		t.Errorf("memory limit before the resize: %s", got)
	}

	// In-place resize, as kubectl asks it of the API server.
	patch := `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"200m","memory":"96Mi"},"limits":{"cpu":"200m","memory":"96Mi"}}}]}}`
	if o, err := c.kubectl("patch", "pod", "resize", "--subresource", "resize", "--patch", patch); err != nil {
		t.Fatalf("kubectl patch --subresource resize: %v\n%s", err, o)
	}
	c.waitKube("resize applied (status)", "96Mi", 90*time.Second, "get", "pod", "resize", "-o", "jsonpath={.status.containerStatuses[0].resources.limits.memory}")
	if got := memLimit(); got != "100663296" {
		t.Errorf("memory limit after the resize: %s, want 100663296", got)
	}
	if o, _ := c.kubectl("get", "pod", "resize", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"); strings.TrimSpace(o) != "0" {
		t.Errorf("the resize restarted the container: restartCount %s", o)
	}

	// Deleting the pod stops the container with its stop signal.
	if o, err := c.kubectl("delete", "pod", "resize", "--wait=true", "--timeout=90s"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s", err, o)
	}
	if b, err := os.ReadFile(filepath.Join(out, "signal")); err != nil || strings.TrimSpace(string(b)) != "USR1" {
		t.Errorf("the container's stop signal: %q %v, want USR1 (lifecycle.stopSignal)", b, err)
	}
}
