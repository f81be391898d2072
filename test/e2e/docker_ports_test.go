package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestDockerPorts: host ports the daemon picks (-p 8080, -p 127.0.0.1::80,
// UDP, -P over the image's and --expose's ports, a range), shown the same
// in inspect's NetworkSettings.Ports, docker port and ps, served over TCP,
// kept across docker restart and a berthd restart, never given twice,
// skipping one a host process holds, and free again once the container is
// removed; a taken port and a bad protocol are refused with nothing made.
func TestDockerPorts(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}, ExposedPorts: []string{"7000/tcp"}}),
		fixtures.Registry(t), "library/ports:1")
	mustDocker(t, d, "pull", "-q", ref)
	serve := "mkdir -p /www && echo pong > /www/index.html && exec httpd -f -p 8080 -h /www"
	type binding struct{ HostIp, HostPort string }
	portsOf := func(name string) map[string][]binding {
		var m map[string][]binding
		if err := json.Unmarshal([]byte(mustDocker(t, d, "inspect", "-f", "{{json .NetworkSettings.Ports}}", name)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	mustDocker(t, d, "run", "-d", "--name", "web", "-p", "8080", "-p", "127.0.0.1::9090/udp", "--expose", "9000", ref, "sh", "-c", serve)
	web := portsOf("web")
	// On a host with IPv6, -p 8080 is published on 0.0.0.0 and ::, as
	// dockerd does (the IPv6 side carried by the container's shim).
	v6 := fixtures.HostIPv6()
	families := 1
	if v6 {
		families = 2
	}
	if len(web) != 4 || web["9000/tcp"] != nil || web["7000/tcp"] != nil || len(web["8080/tcp"]) != families || len(web["9090/udp"]) != 1 {
		t.Fatalf("web's NetworkSettings.Ports: %+v, want 8080/tcp (on %d families) and 9090/udp published, 7000/tcp (the image's) and 9000/tcp null", web, families)
	}
	tcp, udp := web["8080/tcp"][0], web["9090/udp"][0]
	if v6 && web["8080/tcp"][1] != (binding{"::", tcp.HostPort}) {
		t.Fatalf("the IPv6 side of -p 8080: %+v", web["8080/tcp"])
	}
	lo, hi := ephemeral(t)
	for _, b := range []binding{tcp, udp} {
		if p, _ := strconv.Atoi(b.HostPort); p < lo || p > hi {
			t.Fatalf("picked host port %+v is outside the ephemeral range %d-%d", b, lo, hi)
		}
	}
	if tcp.HostIp != "0.0.0.0" || udp.HostIp != "127.0.0.1" {
		t.Fatalf("host addresses: %+v %+v", tcp, udp)
	}
	wantPort := "0.0.0.0:" + tcp.HostPort
	if v6 {
		wantPort += "\n[::]:" + tcp.HostPort
	}
	if out := mustDocker(t, d, "port", "web", "8080"); strings.TrimSpace(out) != wantPort {
		t.Fatalf("docker port web 8080: %q, want %q", out, wantPort)
	}
	if out := mustDocker(t, d, "port", "web", "9090/udp"); strings.TrimSpace(out) != "127.0.0.1:"+udp.HostPort {
		t.Fatalf("docker port web 9090/udp: %q", out)
	}
	ps := strings.TrimSpace(mustDocker(t, d, "ps", "--filter", "name=web", "--format", "{{.Ports}}"))
	for _, want := range []string{"0.0.0.0:" + tcp.HostPort + "->8080/tcp", "127.0.0.1:" + udp.HostPort + "->9090/udp", "7000/tcp", "9000/tcp"} {
		if !strings.Contains(ps, want) {
			t.Errorf("docker ps Ports %q lacks %q", ps, want)
		}
	}
	if got := httpGet(t, "http://127.0.0.1:"+tcp.HostPort+"/"); got != "pong\n" {
		t.Fatalf("the picked port answered %q", got)
	}
	if v6 {
		if !strings.Contains(ps, "[::]:"+tcp.HostPort+"->8080/tcp") {
			t.Errorf("docker ps Ports %q lacks the IPv6 side", ps)
		}
		if got := httpGet(t, "http://[::1]:"+tcp.HostPort+"/"); got != "pong\n" {
			t.Fatalf("the picked port over IPv6 answered %q", got)
		}
	}
	if raw := mustDocker(t, d, "inspect", "-f", "{{json .HostConfig.PortBindings}}", "web"); !strings.Contains(raw, `"8080/tcp":[{"HostIp":"","HostPort":""}]`) {
		t.Errorf("HostConfig.PortBindings shows the request as made, got %s", raw)
	}

	// -P publishes every exposed port (the image's 7000 and --expose 8080),
	// on ports no other container has.
	mustDocker(t, d, "run", "-d", "--name", "all", "-P", "--expose", "8080", ref, "sh", "-c", serve)
	all := portsOf("all")
	if len(all) != 2 || len(all["7000/tcp"]) != families || len(all["8080/tcp"]) != families {
		t.Fatalf("-P: %+v", all)
	}
	seen := map[string]bool{tcp.HostPort: true}
	for _, b := range []binding{all["7000/tcp"][0], all["8080/tcp"][0]} {
		if seen[b.HostPort] {
			t.Fatalf("host port %s given twice (web %+v, all %+v)", b.HostPort, web, all)
		}
		seen[b.HostPort] = true
	}
	if got := httpGet(t, "http://127.0.0.1:"+all["8080/tcp"][0].HostPort+"/"); got != "pong\n" {
		t.Fatalf("-P port answered %q", got)
	}

	// An IPv6 host address alone.
	if v6 {
		mustDocker(t, d, "run", "-d", "--name", "v6only", "-p", "[::1]::8080", ref, "sh", "-c", serve)
		got := portsOf("v6only")["8080/tcp"]
		if len(got) != 1 || got[0].HostIp != "::1" {
			t.Fatalf("-p [::1]::8080: %+v", got)
		}
		if out := httpGet(t, "http://[::1]:"+got[0].HostPort+"/"); out != "pong\n" {
			t.Fatalf("[::1]:%s answered %q", got[0].HostPort, out)
		}
		mustDocker(t, d, "rm", "-f", "v6only")
	}

	// A range skips the port a host process listens on.
	base := fixtures.FreePortRun(t, 3)
	held, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", base))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	mustDocker(t, d, "run", "-d", "--name", "ranged", "-p", fmt.Sprintf("%d-%d:8080", base, base+2), ref, "sh", "-c", serve)
	if got := portsOf("ranged")["8080/tcp"]; len(got) != families || got[0].HostPort != strconv.Itoa(base+1) {
		t.Fatalf("-p %d-%d:8080 with %d held on the host: %+v, want %d", base, base+2, base, got, base+1)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", base+1)); got != "pong\n" {
		t.Fatalf("the ranged port answered %q", got)
	}

	// Taken ports: by a host process, by another container; a range with none free; a bad protocol.
	before := strings.Fields(mustDocker(t, d, "ps", "-aq"))
	for _, c := range []struct{ args, want string }{
		{fmt.Sprintf("%d:80", base), fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", base)},
		{fmt.Sprintf("127.0.0.1:%d:80", base+1), fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", base+1)},
		{fmt.Sprintf("%d-%d:80", base, base+1), fmt.Sprintf("Bind for 0.0.0.0:%d-%d failed: port is already allocated", base, base+1)},
	} {
		if _, errOut, code := dockerCLI(t, d, "run", "-d", "--name", "taken", "-p", c.args, ref, "sleep", "60"); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("-p %s: exit %d, %q; want %q", c.args, code, errOut, c.want)
		}
	}
	status, body := dockerAPI(t, d, "POST", "/containers/create?name=taken", `{"Image":"`+ref+`","HostConfig":{"PortBindings":{"80/sctpx":[{}]}}}`)
	if status != 400 || !strings.Contains(body, `invalid proto \"sctpx\"`) {
		t.Errorf("bad protocol: %d %s", status, body)
	}
	if after := strings.Fields(mustDocker(t, d, "ps", "-aq")); len(after) != len(before) {
		t.Fatalf("refused creates left containers: before %v, after %v", before, after)
	}

	// Kept across docker restart and berthd's restart.
	mustDocker(t, d, "restart", "-t", "1", "web")
	if got := portsOf("web")["8080/tcp"]; len(got) != families || got[0] != tcp {
		t.Fatalf("after docker restart: %+v, want %+v", got, tcp)
	}
	if got := v6Get(t, v6, tcp.HostPort); got != "pong\n" {
		t.Fatalf("after docker restart the port answered over IPv6 %q", got)
	}
	d.kill()
	d.start(fixtures.Binaries(t))
	if got := portsOf("web")["8080/tcp"]; len(got) != families || got[0] != tcp {
		t.Fatalf("after berthd's restart: %+v, want %+v", got, tcp)
	}
	if got := httpGet(t, "http://127.0.0.1:"+tcp.HostPort+"/"); got != "pong\n" {
		t.Fatalf("after berthd's restart the port answered %q", got)
	}
	if got := v6Get(t, v6, tcp.HostPort); got != "pong\n" {
		t.Fatalf("after berthd's restart the port answered over IPv6 %q", got)
	}

	// Released on removal: the same host port serves a new container.
	mustDocker(t, d, "rm", "-f", "web")
	mustDocker(t, d, "run", "-d", "--name", "again", "-p", tcp.HostPort+":8080", ref, "sh", "-c", serve)
	if got := httpGet(t, "http://127.0.0.1:"+tcp.HostPort+"/"); got != "pong\n" {
		t.Fatalf("the released port, published again, answered %q", got)
	}

	// The host's network publishes nothing: dockerd shows {}.
	mustDocker(t, d, "create", "--name", "onhost", "--network", "host", "-p", "8080", ref, "true")
	if got := mustDocker(t, d, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "onhost"); strings.TrimSpace(got) != "{}" {
		t.Errorf("--network host: Ports %s, want {}", got)
	}
	mustDocker(t, d, "rm", "-f", "all", "ranged", "again", "onhost")
	assertNothingLeft(t, d)
}

// v6Get is httpGet on [::1]:port, or pong without IPv6 here.
func v6Get(t *testing.T, v6 bool, port string) string {
	t.Helper()
	if !v6 {
		return "pong\n"
	}
	return httpGet(t, "http://[::1]:"+port+"/")
}

// ephemeral is the kernel's ephemeral port range, where picked ports come from.
func ephemeral(t *testing.T) (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi int
	fmt.Sscan(string(b), &lo, &hi)
	return lo, hi
}
