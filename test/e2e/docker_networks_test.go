package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestDockerNetworks: user-defined bridge networks. Containers on one reach
// each other by name and alias (a container made later is known to those
// made before it), inspect shows the network's members and each member's
// address and aliases, a network in use cannot be removed, removing it
// takes its bridge, prune removes unused ones, and bad requests are
// Docker's errors.
func TestDockerNetworks(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)

	if out := mustDocker(t, d, "network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(out, "bridge bridge") ||
		!strings.Contains(out, "host host") || !strings.Contains(out, "none null") {
		t.Fatalf("docker network ls: %q", out)
	}
	id := strings.TrimSpace(mustDocker(t, d, "network", "create", "--label", "team=a", "app"))
	bridge := "br-" + id[:12]
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", bridge).Run() })
	if _, errOut, code := dockerCLI(t, d, "network", "create", "app"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("a second network named app: exit %d %q", code, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "network", "create", "-d", "overlay", "ov"); code == 0 || !strings.Contains(errOut, "not supported") {
		t.Errorf("an overlay network: exit %d %q", code, errOut)
	}

	mustDocker(t, d, "run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", ref,
		"sh", "-c", "mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www")
	mustDocker(t, d, "run", "-d", "--name", "db", "--network", "app", ref, "sleep", "600")
	for _, name := range []string{"web", "www"} {
		var out string
		for i := 0; i < 50; i++ { // httpd may not listen yet
			out, _, _ = dockerCLI(t, d, "run", "--rm", "--network", "app", ref, "wget", "-qO-", "http://"+name+"/")
			if out == "hello from web\n" {
				break
			}
		}
		if out != "hello from web\n" {
			t.Errorf("wget http://%s/ from a container on the network: %q", name, out)
		}
	}
	if out, _, code := dockerCLI(t, d, "exec", "web", "ping", "-c", "1", "-W", "2", "db"); code != 0 {
		t.Errorf("web cannot reach db, made after it, by name: exit %d %q", code, out)
	}
	if _, _, code := dockerCLI(t, d, "run", "--rm", ref, "ping", "-c", "1", "-W", "1", "web"); code == 0 {
		t.Errorf("a container on the default bridge resolved web, which is on app only")
	}

	var nets []struct {
		Name       string
		IPAM       struct{ Config []struct{ Subnet string } }
		Containers map[string]struct{ Name, IPv4Address string }
		Labels     map[string]string
	}
	if err := json.Unmarshal([]byte(mustDocker(t, d, "network", "inspect", "app")), &nets); err != nil || len(nets) != 1 {
		t.Fatalf("network inspect: %v", err)
	}
	n := nets[0]
	if len(n.IPAM.Config) != 1 || !strings.HasPrefix(n.IPAM.Config[0].Subnet, "10.89.") || len(n.Containers) != 2 || n.Labels["team"] != "a" {
		t.Errorf("network inspect app: %+v", n)
	}
	out := mustDocker(t, d, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}} {{$v.Aliases}}{{end}}", "web")
	if !strings.HasPrefix(out, "app 10.89.") || !strings.Contains(out, "www") {
		t.Errorf("inspect web's networks: %q", out)
	}
	if out := mustDocker(t, d, "ps", "--filter", "network=app", "--format", "{{.Names}}"); !strings.Contains(out, "web") || !strings.Contains(out, "db") {
		t.Errorf("ps --filter network=app: %q", out)
	}
	if _, errOut, code := dockerCLI(t, d, "network", "rm", "app"); code == 0 || !strings.Contains(errOut, "active endpoints") {
		t.Errorf("rm of a network in use: exit %d %q", code, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "network", "rm", "bridge"); code == 0 || !strings.Contains(errOut, "pre-defined") {
		t.Errorf("rm of bridge: exit %d %q", code, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "run", "--rm", "--network", "nosuch", ref, "true"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("run on a missing network: exit %d %q", code, errOut)
	}
	// connect and disconnect: web joins a second network on eth1, where
	// the containers there reach it by its alias, and leaves it again.
	backID := strings.TrimSpace(mustDocker(t, d, "network", "create", "back"))
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", "br-"+backID[:12]).Run() })
	mustDocker(t, d, "run", "-d", "--name", "store", "--network", "back", ref, "sleep", "600")
	mustDocker(t, d, "network", "connect", "--alias", "frontdoor", "back", "web")
	if out := mustDocker(t, d, "exec", "web", "ls", "/sys/class/net"); !strings.Contains(out, "eth1") {
		t.Errorf("after connect, web's interfaces: %q", out)
	}
	if out, _, code := dockerCLI(t, d, "exec", "store", "ping", "-c", "1", "-W", "2", "frontdoor"); code != 0 {
		t.Errorf("store cannot reach web by its alias on back: %q", out)
	}
	if out, _, code := dockerCLI(t, d, "exec", "web", "ping", "-c", "1", "-W", "2", "store"); code != 0 {
		t.Errorf("web cannot reach store on back: %q", out)
	}
	if out, _, code := dockerCLI(t, d, "exec", "web", "ping", "-c", "1", "-W", "2", "db"); code != 0 {
		t.Errorf("web lost its peers on app after the connect: %q", out)
	}
	if out := mustDocker(t, d, "inspect", "-f", "{{len .NetworkSettings.Networks}}", "web"); strings.TrimSpace(out) != "2" {
		t.Errorf("web's networks after connect: %q", out)
	}
	if _, errOut, code := dockerCLI(t, d, "network", "connect", "back", "web"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("a second connect: exit %d %q", code, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "network", "rm", "back"); code == 0 || !strings.Contains(errOut, "active endpoints") {
		t.Errorf("rm of a network a container is connected to: exit %d %q", code, errOut)
	}
	mustDocker(t, d, "network", "disconnect", "back", "web")
	if out := mustDocker(t, d, "exec", "web", "ls", "/sys/class/net"); strings.Contains(out, "eth1") {
		t.Errorf("after disconnect, web's interfaces: %q", out)
	}
	if _, _, code := dockerCLI(t, d, "exec", "store", "ping", "-c", "1", "-W", "1", "frontdoor"); code == 0 {
		t.Error("store still reaches web by its alias after the disconnect")
	}
	if _, errOut, code := dockerCLI(t, d, "network", "disconnect", "app", "web"); code == 0 || !strings.Contains(errOut, "not supported") {
		t.Errorf("disconnect from the network web was created on: exit %d %q", code, errOut)
	}
	mustDocker(t, d, "network", "connect", "back", "web") // left connected: removal takes it down
	// Two networks at create (the CLI sends both in the endpoint config):
	// the container is on both from its start.
	mustDocker(t, d, "run", "-d", "--name", "both", "--network", "app", "--network", "name=back,alias=twoway", ref, "sleep", "600")
	if out := mustDocker(t, d, "inspect", "-f", "{{len .NetworkSettings.Networks}}", "both"); strings.TrimSpace(out) != "2" {
		t.Errorf("a container made on two networks is on %s", out)
	}
	if out, _, code := dockerCLI(t, d, "exec", "store", "ping", "-c", "1", "-W", "2", "twoway"); code != 0 {
		t.Errorf("store cannot reach both by its alias on back: %q", out)
	}
	if out, _, code := dockerCLI(t, d, "exec", "db", "ping", "-c", "1", "-W", "2", "both"); code != 0 {
		t.Errorf("db cannot reach both on app: %q", out)
	}
	mustDocker(t, d, "rm", "-f", "store", "both")

	mustDocker(t, d, "rm", "-f", "web", "db")
	mustDocker(t, d, "network", "rm", "app", "back")
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		t.Errorf("bridge %s left after the network's removal", bridge)
	}
	mustDocker(t, d, "network", "create", "--subnet", "10.99.7.0/24", "spare")
	if _, errOut, code := dockerCLI(t, d, "network", "create", "--subnet", "10.99.7.0/24", "again"); code == 0 || !strings.Contains(errOut, "overlaps") {
		t.Errorf("a second network on the same subnet: exit %d %q", code, errOut)
	}
	if out := mustDocker(t, d, "network", "prune", "-f"); !strings.Contains(out, "spare") {
		t.Errorf("network prune: %q", out)
	}
	if out := mustDocker(t, d, "network", "ls", "--filter", "type=custom", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("custom networks left: %q", out)
	}
	assertNothingLeft(t, d)
}

// TestDockerNetworkConnectCrash: a container connected to a second network
// when berthd is killed keeps both after the restart, and its removal then
// leaves no veth or address lease of either network (the attachment was
// recorded before its ADD, so the teardown finds it).
func TestDockerNetworkConnectCrash(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	id := strings.TrimSpace(mustDocker(t, d, "network", "create", "crashnet"))
	bridge := "br-" + id[:12]
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", bridge).Run() })
	leases := func() int {
		n := 0
		for _, dir := range []string{"/var/lib/cni/networks/berth", "/var/lib/cni/networks/berth-crashnet"} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Count(e.Name(), ".") == 3 {
					n++
				}
			}
		}
		return n
	}
	veths := func() int {
		out, _ := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
		return strings.Count(string(out), "master berth0") + strings.Count(string(out), "master "+bridge)
	}
	beforeLeases, beforeVeths := leases(), veths()
	mustDocker(t, d, "run", "-d", "--name", "held", ref, "sleep", "600")
	mustDocker(t, d, "network", "connect", "crashnet", "held")
	if got := leases() - beforeLeases; got != 2 {
		t.Fatalf("%d leases for a container on two networks, want 2", got)
	}
	d.kill()
	d.start(fixtures.Binaries(t))
	if out := mustDocker(t, d, "exec", "held", "ls", "/sys/class/net"); !strings.Contains(out, "eth0") || !strings.Contains(out, "eth1") {
		t.Errorf("after the restart the container's interfaces are %q", out)
	}
	if out := mustDocker(t, d, "inspect", "-f", "{{len .NetworkSettings.Networks}}", "held"); strings.TrimSpace(out) != "2" {
		t.Errorf("after the restart inspect lists %q networks, want 2", out)
	}
	mustDocker(t, d, "rm", "-f", "held")
	mustDocker(t, d, "network", "rm", "crashnet")
	if l, v := leases()-beforeLeases, veths()-beforeVeths; l != 0 || v != 0 {
		t.Errorf("left after the removal: %d leases, %d veths", l, v)
	}
	assertNothingLeft(t, d)
}
