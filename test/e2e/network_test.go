package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// The default network's bridge and its gateway: the host's own address on it.
const (
	bridgeName = "berth0"
	gatewayIP  = "10.88.0.1"
	leaseDir   = "/var/lib/cni/networks/berth"
)

func requireCNI(t *testing.T) {
	t.Helper()
	fixtures.RequireRoot(t)
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall", "bandwidth"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			if _, err := os.Stat(filepath.Join("/opt/cni/bin", p)); err != nil {
				t.Skipf("needs the CNI plugin %s: apt-get install containernetworking-plugins", p)
			}
		}
	}
	fixtures.RequireBinary(t, "iptables")
}

// freePort is a port nothing on the host listens on now, TCP and UDP.
func freePort(t *testing.T) int32 {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			u.Close()
			return int32(port)
		}
	}
	t.Fatal("no free port")
	return 0
}

// netPod runs a pod (with cfg's extras) and one busybox container running cmd.
func netPod(t *testing.T, d *daemon, ref, name string, mod func(*runtimeapi.PodSandboxConfig), cmd ...string) (podID, cid, ip string) {
	t.Helper()
	ctx := context.Background()
	pod := podConfig(name, filepath.Join(d.dir, "pods", name))
	if mod != nil {
		mod(pod)
	}
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.rs.StopPodSandbox(context.Background(), podID)
		_ = d.rs.RemovePodSandbox(context.Background(), podID)
	})
	cid, err = d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: cmd, LogPath: name + ".log",
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(pod.LogDirectory, name+".log"))
			t.Logf("log of container %s:\n%s", name, b)
		}
	})
	st, err := d.rs.PodSandboxStatus(ctx, podID, false)
	if err != nil {
		t.Fatal(err)
	}
	ip = st.GetStatus().GetNetwork().GetIp()
	if net.ParseIP(ip) == nil || !strings.HasPrefix(ip, "10.88.") {
		t.Fatalf("pod %s has IP %q, want one of the default network's 10.88.0.0/16", name, ip)
	}
	return podID, cid, ip
}

// httpGet fetches url, retrying while the server starts; only addresses on
// this host or in the test's pods are ever asked.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for range 50 {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// TestPodNetwork: a pod on the default network is reachable from the host by
// its IP and through TCP and UDP hostPorts (on 127.0.0.1 and on the host's
// address on the bridge), another pod reaches it by IP, and its resolv.conf is
// the pod's DNSConfig.
func TestPodNetwork(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	// busybox plus a UDP echo server.
	img, err := mutate.AppendLayers(fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}), fixtures.UDPEchoLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := fixtures.Push(t, img, fixtures.Registry(t), "library/netbox:latest")
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}

	st, err := d.rs.Status(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if !c.Status {
			t.Fatalf("condition %s false: %s %s", c.Type, c.Reason, c.Message)
		}
	}

	tcpPort, udpPort := freePort(t), freePort(t)
	for udpPort == tcpPort {
		udpPort = freePort(t)
	}
	dns := &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}}
	webID, webCID, webIP := netPod(t, d, ref, "web", func(p *runtimeapi.PodSandboxConfig) {
		p.DnsConfig = dns
		p.PortMappings = []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: tcpPort},
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 5353, HostPort: udpPort},
		}
	}, "sh", "-c", `mkdir -p /www; echo hello-from-web > /www/index.html; udpecho :5353 & exec httpd -f -p 80 -h /www`)

	if got := httpGet(t, fmt.Sprintf("http://%s/", webIP)); got != "hello-from-web\n" {
		t.Fatalf("pod IP: %q", got)
	}
	for _, host := range []string{"127.0.0.1", gatewayIP} {
		if got := httpGet(t, fmt.Sprintf("http://%s:%d/", host, tcpPort)); got != "hello-from-web\n" {
			t.Fatalf("hostPort on %s: %q", host, got)
		}
	}

	// UDP hostPort: a datagram to 127.0.0.1 reaches the pod's echo server and its answer comes back.
	var answer string
	for range 30 {
		if answer, err = udpRoundTrip(fmt.Sprintf("127.0.0.1:%d", udpPort), "ping"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || answer != "echo: ping" {
		t.Fatalf("UDP hostPort: %q %v", answer, err)
	}

	// Pod to pod, by IP.
	_, clientCID, clientIP := netPod(t, d, ref, "client", nil, "sleep", "600")
	if clientIP == webIP {
		t.Fatalf("two pods share IP %s", webIP)
	}
	out, errOut, err := d.rs.ExecSync(ctx, clientCID, []string{"wget", "-qO-", "http://" + webIP + "/"}, 10*time.Second)
	if err != nil || string(out) != "hello-from-web\n" {
		t.Fatalf("pod to pod: %q %q %v", out, errOut, err)
	}

	// resolv.conf is the DNSConfig; the host's hosts file names the pod's IP.
	out, _, err = d.rs.ExecSync(ctx, webCID, []string{"cat", "/etc/resolv.conf", "/etc/hosts"}, 10*time.Second)
	want := "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
	if err != nil || !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), webIP+"\tweb\n") {
		t.Fatalf("resolv.conf and hosts:\n%s (%v)", out, err)
	}
	// The pod sees its address on eth0.
	out, _, err = d.rs.ExecSync(ctx, webCID, []string{"ip", "-4", "-o", "addr", "show", "eth0"}, 10*time.Second)
	if err != nil || !strings.Contains(string(out), webIP+"/16") {
		t.Fatalf("eth0 in the pod: %s %v", out, err)
	}

	// Stopping twice is fine; after it, the hostPort is gone and so is the IP's lease.
	for range 2 {
		if err := d.rs.StopPodSandbox(ctx, webID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(leaseDir, webIP)); !os.IsNotExist(err) {
		t.Fatalf("lease of %s still there after stop: %v", webIP, err)
	}
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", tcpPort)); err == nil {
		resp.Body.Close()
		t.Fatal("hostPort still answers after the pod stopped")
	}
}

// netCounts is what pods leave on the host: veths, IP leases, iptables rules,
// pinned network namespaces.
type netCounts struct{ veths, leases, rules, netns int }

// leaked says whether c has more of anything than before. Rules may be
// fewer: a pod's DEL also removes rules for its IP that an earlier pod,
// whose interrupted ADD the plugins could not undo, left (TestChaos counts those).
func (c netCounts) leaked(before netCounts) bool {
	return c.veths != before.veths || c.leases != before.leases || c.netns != before.netns || c.rules > before.rules
}

// cniRules are the iptables rules and chains the CNI plugins made.
func cniRules(t *testing.T) []string {
	t.Helper()
	rules, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(rules), "\n") {
		if strings.HasPrefix(l, "-A") && strings.Contains(l, "CNI") || strings.HasPrefix(l, ":CNI") {
			out = append(out, l)
		}
	}
	return out
}

func countNet(t *testing.T, d *daemon) netCounts {
	t.Helper()
	var c netCounts
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "master "+bridgeName) {
			c.veths++
		}
	}
	ents, _ := os.ReadDir(leaseDir)
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			c.leases++
		}
	}
	c.rules = len(cniRules(t))
	for _, m := range mountsUnder(d.dir) {
		if strings.HasSuffix(m, "/ns/net") {
			c.netns++
		}
	}
	return c
}

// TestNetworkTeardownLeavesNothing: 20 pods with hostPorts created and removed
// leave no veth, lease, iptables rule or network namespace.
func TestNetworkTeardownLeavesNothing(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	ctx := context.Background()
	before := warmNetwork(t, d)
	var ids []string
	for i := range 20 {
		id, err := d.rs.RunPodSandbox(ctx, netOnlyPod(fmt.Sprintf("many%d", i), freePort(t)), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	during := countNet(t, d)
	if during.veths != before.veths+20 || during.leases != before.leases+20 || during.netns != before.netns+20 || during.rules <= before.rules {
		t.Fatalf("20 pods: before %+v, with them %+v", before, during)
	}
	for i, id := range ids {
		if i%2 == 0 { // half stopped first, half removed straight away
			if err := d.rs.StopPodSandbox(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if after := countNet(t, d); after.leaked(before) {
		t.Fatalf("after removing 20 pods: before %+v, after %+v", before, after)
	}
	assertNothingLeft(t, d)
}

// warmNetwork runs and removes a first pod, which creates the plugins' shared
// chains (they stay, as with every runtime), and returns the counts after it.
func warmNetwork(t *testing.T, d *daemon) netCounts {
	t.Helper()
	ctx := context.Background()
	warm, err := d.rs.RunPodSandbox(ctx, netOnlyPod("warm", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, warm); err != nil {
		t.Fatal(err)
	}
	return countNet(t, d)
}

// netOnlyPod is a pod with no containers and, if hostPort > 0, one TCP hostPort.
func netOnlyPod(name string, hostPort int32) *runtimeapi.PodSandboxConfig {
	p := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: name + "-uid", Namespace: "default"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
	if hostPort > 0 {
		p.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort}}
	}
	return p
}

// TestNetworkCrash: berthd killed with SIGKILL while CNI ADD or DEL runs,
// again and again. After each restart every pod with a record still has its
// IP (and its veth); once all are removed, nothing is left.
func TestNetworkCrash(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	bin := fixtures.Binaries(t)
	ctx := context.Background()
	before := warmNetwork(t, d)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 8 {
		stopping := ""
		if round%2 == 1 {
			// Kill during a stop: make a pod to stop first.
			id, err := d.rs.RunPodSandbox(ctx, netOnlyPod(fmt.Sprintf("stop%d", round), freePort(t)), "")
			if err != nil {
				t.Fatal(err)
			}
			stopping = id
		}
		done := make(chan error, 1)
		go func() {
			if stopping != "" {
				done <- d.rs.StopPodSandbox(ctx, stopping)
				return
			}
			_, err := d.rs.RunPodSandbox(ctx, netOnlyPod(fmt.Sprintf("crash%d", round), freePort(t)), "")
			done <- err
		}()
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		d.kill()
		<-done
		d.start(bin)

		pods, err := d.rs.ListPodSandbox(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			st, err := d.rs.PodSandboxStatus(ctx, p.Id, false)
			if err != nil {
				t.Fatal(err)
			}
			if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ip := st.GetStatus().GetNetwork().GetIp()
				if _, err := os.Stat(filepath.Join(leaseDir, ip)); ip == "" || err != nil {
					t.Fatalf("round %d: ready pod %s lost its IP %q: %v", round, p.Id, ip, err)
				}
			}
		}
	}
	d.removeAllPods()
	if after := countNet(t, d); after.leaked(before) {
		t.Fatalf("after crashes and removal of every pod: before %+v, after %+v", before, after)
	}
	// The kills did land inside RunPodSandbox: the start-up sweep had work to do.
	if b, _ := os.ReadFile(d.logFile); !strings.Contains(string(b), "whose creation was interrupted") {
		t.Log("no kill landed inside a RunPodSandbox this time (timing); the teardown was still checked")
	}
	assertNothingLeft(t, d)
}

// TestNetworkConfigErrors: a conflist naming a missing plugin, or one that is
// not JSON, makes Status say why and RunPodSandbox fail naming the file and
// plugin, leaving nothing; fixing the directory makes the network ready again
// without a restart.
func TestNetworkConfigErrors(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	ctx := context.Background()
	if err := os.MkdirAll(d.netDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(d.netDir(), "10-missing.conflist")
	broken := filepath.Join(d.netDir(), "05-broken.conflist")
	cases := []struct {
		file, content string
		want          []string
	}{
		{missing, `{"cniVersion":"1.0.0","name":"m","plugins":[{"type":"bridge","bridge":"berthx0","ipam":{"type":"host-local","subnet":"10.77.0.0/24"}},{"type":"nosuchplugin"}]}`,
			[]string{missing, `"nosuchplugin"`}},
		{broken, `{"cniVersion": "1.0.0", "name": `, []string{broken}},
	}
	for _, c := range cases {
		if err := os.WriteFile(c.file, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := d.rs.Status(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var netCond *runtimeapi.RuntimeCondition
		for _, cond := range st.GetStatus().GetConditions() {
			if cond.Type == runtimeapi.NetworkReady {
				netCond = cond
			}
		}
		if netCond == nil || netCond.Status {
			t.Fatalf("%s: NetworkReady %+v", c.file, netCond)
		}
		_, err = d.rs.RunPodSandbox(ctx, netOnlyPod("bad", 0), "")
		for _, w := range append(c.want, "") {
			if err == nil || !strings.Contains(err.Error(), w) || !strings.Contains(netCond.Message, w) {
				t.Fatalf("%s: RunPodSandbox error %v, Status message %q: want both to name %q", c.file, err, netCond.Message, w)
			}
		}
		if pods, _ := d.rs.ListPodSandbox(ctx, nil); len(pods) != 0 {
			t.Fatalf("a failed RunPodSandbox left %d pods", len(pods))
		}
		assertNothingLeft(t, d)
	}
	// Both files gone: the default network again, without a restart.
	os.Remove(missing)
	os.Remove(broken)
	id, err := d.rs.RunPodSandbox(ctx, netOnlyPod("good", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// TestHostNetworkPodSkipsCNI: a hostNetwork pod gets no veth and no lease.
func TestHostNetworkPodSkipsCNI(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	ctx := context.Background()
	before := countNet(t, d)
	p := netOnlyPod("hostnet", 0)
	p.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	id, err := d.rs.RunPodSandbox(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if c := countNet(t, d); c.veths != before.veths || c.leases != before.leases {
		t.Fatalf("hostNetwork pod: before %+v, with it %+v", before, c)
	}
	if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func udpRoundTrip(addr, msg string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// TestPodBandwidth: kubelet's bandwidth annotations shape the pod's traffic
// (a tbf qdisc on its host-side veth for ingress, an ifb device for egress),
// and removal takes the ifb device away.
func TestPodBandwidth(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "tc")
	d := startDaemon(t)
	ctx := context.Background()
	p := netOnlyPod("shaped", 0)
	p.Annotations = map[string]string{"kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "20M"}
	id, err := d.rs.RunPodSandbox(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	qdiscs := func() string {
		out, err := exec.Command("tc", "qdisc", "show").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	got := qdiscs()
	if !strings.Contains(got, "rate 10Mbit") || !strings.Contains(got, "rate 20Mbit") {
		t.Fatalf("no 10Mbit ingress and 20Mbit egress shaping:\n%s", got)
	}
	if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := qdiscs(); strings.Contains(got, "rate 20Mbit") {
		t.Fatalf("egress shaping left after removal:\n%s", got)
	}
	// A rate that is not a quantity is refused by name, and leaves no pod.
	p.Metadata.Name, p.Metadata.Uid = "badrate", "badrate-uid"
	p.Annotations = map[string]string{"kubernetes.io/ingress-bandwidth": "fast"}
	if _, err := d.rs.RunPodSandbox(ctx, p, ""); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "kubernetes.io/ingress-bandwidth") {
		t.Fatalf("bad rate: %v", err)
	}
}

// TestPodCIDRFromKubelet: UpdateRuntimeConfig's pod CIDR becomes the default
// network's range; a bad one is refused.
func TestPodCIDRFromKubelet(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	ctx := context.Background()
	// The bridge plugin keeps one gateway address per bridge, so a new range
	// needs a new berth0 (as on a node that joins a cluster before it runs
	// pods): the test's own, made afresh and removed after.
	if c := countNet(t, d); c.veths > 0 {
		t.Skipf("%d pods of others are on %s", c.veths, bridgeName)
	}
	delBridge := func() { _ = exec.Command("ip", "link", "del", bridgeName).Run() }
	delBridge()
	t.Cleanup(delBridge)
	const cidr = "10.88.200.0/24"
	if err := d.rs.UpdateRuntimeConfig(ctx, &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}}); err != nil {
		t.Fatal(err)
	}
	id, err := d.rs.RunPodSandbox(ctx, netOnlyPod("cidr", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.rs.PodSandboxStatus(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if ip := st.GetStatus().GetNetwork().GetIp(); !strings.HasPrefix(ip, "10.88.200.") {
		t.Fatalf("pod IP %q is not in the pod CIDR %s", ip, cidr)
	}
	if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	err = d.rs.UpdateRuntimeConfig(ctx, &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.88.300.0/24"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad pod CIDR: %v", err)
	}
}

// TestNetworkCheckedOnRestart: after a restart berthd asks the plugins (CNI
// CHECK) about every ready pod and reports one whose interface is gone.
func TestNetworkCheckedOnRestart(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "nsenter")
	d := startDaemon(t)
	ctx := context.Background()
	intact, err := d.rs.RunPodSandbox(ctx, netOnlyPod("intact", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	broken, err := d.rs.RunPodSandbox(ctx, netOnlyPod("broken", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	netns := filepath.Join(d.state, "sandboxes", broken, "ns", "net")
	if out, err := exec.Command("nsenter", "--net="+netns, "ip", "link", "del", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("delete the pod's eth0: %v %s", err, out)
	}
	d.kill()
	d.start(fixtures.Binaries(t))
	// The checks run behind serving; berthd logs when they are done.
	var log string
	for i := 0; i < 200 && !strings.Contains(log, "pod networks checked"); i++ {
		time.Sleep(50 * time.Millisecond)
		b, _ := os.ReadFile(d.logFile)
		log = string(b)
	}
	if !strings.Contains(log, "pod network check failed") || !strings.Contains(log, "sandbox="+broken) {
		t.Fatalf("no failed check reported for %s:\n%s", broken, log)
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "pod network check failed") && strings.Contains(l, intact) {
			t.Fatalf("the intact pod was reported: %s", l)
		}
	}
	for _, id := range []string{intact, broken} {
		if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNetworkDelWithoutCachedResult: a pod whose CNI ADD left no cached
// result (berthd killed after the plugins ran, before libcni wrote its cache:
// their DEL then gets no previous result) is still torn down whole — no
// veth, lease or iptables rule is left (the firewall plugin's rules name the
// pod's IP, which only the previous result tells it).
func TestNetworkDelWithoutCachedResult(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	ctx := context.Background()
	before := warmNetwork(t, d)
	id, err := d.rs.RunPodSandbox(ctx, netOnlyPod("nocache", freePort(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := filepath.Glob(filepath.Join(d.root, "cni", "results", "*"+id+"*"))
	if len(cached) == 0 {
		t.Fatalf("no libcni cache for pod %s under %s", id, filepath.Join(d.root, "cni"))
	}
	for _, f := range cached {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.rs.StopPodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	if after := countNet(t, d); after.leaked(before) {
		rules, _ := exec.Command("iptables-save").Output()
		t.Errorf("DEL without a cached result left: before %+v, after %+v\n%s", before, after, rules)
	}
}
