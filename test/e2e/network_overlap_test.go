package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cni"
)

// networkReady is Status' NetworkReady condition.
func networkReady(t *testing.T, d *daemon) *runtimeapi.RuntimeCondition {
	t.Helper()
	st, err := d.rs.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if c.Type == runtimeapi.NetworkReady {
			return c
		}
	}
	t.Fatal("no NetworkReady condition")
	return nil
}

func podIP(t *testing.T, d *daemon, id string) string {
	t.Helper()
	st, err := d.rs.PodSandboxStatus(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	return st.GetStatus().GetNetwork().GetIp()
}

// reachable says whether the host reaches ip: a pod that listens on
// nothing answers a connection with a reset ("connection refused"), where
// an address routed elsewhere gives "no route to host" or silence.
func reachable(ip string) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "9"), 3*time.Second)
	if err == nil {
		c.Close()
		return nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	return fmt.Errorf("%s: %w", ip, err)
}

// TestNetworkOverlap: a second bridge network on berth0's range (Podman's
// package drops one into /etc/cni/net.d) is not ready, loudly, naming the
// interface in the way, while berth0 has pods; once berth0 is idle it is
// removed and the new network works, its pods reachable from the host.
// And the embedded default takes a free range when its own is another
// interface's.
func TestNetworkOverlap(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	ctx := context.Background()
	old, err := d.rs.RunPodSandbox(ctx, netOnlyPod("on-berth0", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(podIP(t, d, old)); ip == nil || !strings.HasPrefix(ip.String(), "10.88.") {
		t.Fatalf("a pod on the default network got %v", ip)
	}

	const bridge = "berthpm0"
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "delete", bridge).Run()
		_ = os.RemoveAll("/var/lib/cni/networks/podmanlike")
	})
	if err := os.MkdirAll(d.netDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(d.netDir(), "87-podman-bridge.conflist")
	if err := os.WriteFile(conf, []byte(`{"cniVersion":"0.4.0","name":"podmanlike","plugins":[{"type":"bridge","bridge":"`+bridge+
		`","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}]]}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cond := networkReady(t, d)
	for _, want := range []string{"overlaps", "berth0", conf, "10.88.0.0/16"} {
		if cond.Status || !strings.Contains(cond.Message, want) {
			t.Fatalf("NetworkReady with berth0 busy on the new network's range: %v %q, want it false naming %q", cond.Status, cond.Message, want)
		}
	}
	if _, err := d.rs.RunPodSandbox(ctx, netOnlyPod("refused", 0), ""); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("RunPodSandbox while the ranges overlap: %v", err)
	}

	// berth0's last pod goes: berth0 goes, and the new network is ready.
	if err := d.rs.RemovePodSandbox(ctx, old); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cond = networkReady(t, d); !cond.Status && time.Now().Before(deadline); cond = networkReady(t, d) {
		time.Sleep(200 * time.Millisecond)
	}
	if !cond.Status {
		t.Fatalf("NetworkReady after berth0's last pod went: %q", cond.Message)
	}
	if _, err := os.Stat("/sys/class/net/" + cni.DefaultBridge); err == nil {
		t.Fatal("the idle berth0 is still there")
	}
	id, err := d.rs.RunPodSandbox(ctx, netOnlyPod("on-podman", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := reachable(podIP(t, d, id)); err != nil {
		t.Fatalf("the host cannot reach a pod of the new network: %v", err)
	}
	if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	os.Remove(conf)

	// Another interface (a bridge of the test's: this kernel has no dummy
	// links) holds 10.88.0.0/16: a new berthd's default network
	// takes the next free /16.
	const dummy = "berthdum0"
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", dummy).Run() })
	for _, args := range [][]string{{"link", "add", dummy, "type", "bridge"}, {"addr", "add", "10.88.250.1/16", "dev", dummy}, {"link", "set", dummy, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	d2 := startDaemon(t)
	id, err = d2.rs.RunPodSandbox(ctx, netOnlyPod("moved", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if ip := podIP(t, d2, id); !strings.HasPrefix(ip, "10.90.") {
		t.Errorf("with 10.88.0.0/16 held by %s, the default network gave %s, want 10.90.0.0/16", dummy, ip)
	}
	if err := reachable(podIP(t, d2, id)); err != nil {
		t.Errorf("a pod on the moved default network is unreachable: %v", err)
	}
	if err := d2.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("ip", "addr", "del", "10.90.0.1/16", "dev", cni.DefaultBridge).Run()
	assertNothingLeft(t, d)
	assertNothingLeft(t, d2)
}
