package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestChaos: 20 rounds of four workers creating pods (each with a running
// container) and removing earlier ones while berthd is killed with SIGKILL
// at a random instant, then restarted. After each restart every pod and
// container answers its status call and every container said running runs
// (it answers an exec); after the last, removing everything leaves nothing:
// it prints the count of each kind of leak, all of which must be 0,
// iptables rules too: an ADD cut short before libcni cached its result is
// undone by a DEL given host-local's leases as its previous result
// (cni/prevresult.go), where the firewall plugin would otherwise get no IPs.
func TestChaos(t *testing.T) {
	requireCNI(t)
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	bin := fixtures.Binaries(t)
	ref := pulledBusybox(t, d)
	before := warmNetwork(t, d)
	rulesBefore := cniRules(t)
	// A restarted berthd once exited on a SIGTERM during its start-up sweep
	// (berth-runtime forwarded a signal to a reaped child's pid, which berthd
	// had been given): should a restarted berthd exit again, the trace names
	// the sender.
	signals := fixtures.TraceSignals(t, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	rng := rand.New(rand.NewPCG(7, 11))
	const rounds, workers = 20, 4
	inconsistent, created, removed, earlyExits := 0, 0, 0, 0
	var mu sync.Mutex
	for round := range rounds {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for i := 0; ; i++ {
					if (round+w+i)%2 == 1 { // remove one first: the kill may land in a removal too
						pods, err := d.rs.ListPodSandbox(ctx, nil)
						if err != nil {
							return
						}
						if len(pods) > 0 {
							victim := pods[(round*7+w*3+i)%len(pods)].Id
							if d.rs.StopPodSandbox(ctx, victim) != nil || d.rs.RemovePodSandbox(ctx, victim) != nil {
								return
							}
							mu.Lock()
							removed++
							mu.Unlock()
						}
					}
					name := fmt.Sprintf("chaos-%d-%d-%d", round, w, i)
					pod := podConfig(name, filepath.Join(d.dir, "pods", name))
					id, err := d.rs.RunPodSandbox(ctx, pod, "")
					if err != nil {
						return // berthd is gone: this round is over
					}
					cid, err := d.rs.CreateContainer(ctx, id, &runtimeapi.ContainerConfig{
						Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
						Command: []string{"sleep", "600"}, LogPath: "c.log",
					}, pod)
					if err != nil || d.rs.StartContainer(ctx, cid) != nil {
						return
					}
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(800)) * time.Millisecond)
		d.kill()
		wg.Wait()
		if err := d.startErr(bin); err != nil {
			earlyExits++
			pid := 0
			if d.cmd != nil && d.cmd.Process != nil {
				pid = d.cmd.Process.Pid
			}
			sent := signals(pid)
			t.Logf("round %d: the restarted berthd (pid %d) exited at once: %v\nsignals sent to it:\n%s\nberthd's log ends:\n%s",
				round, pid, err, sent, tailFile(d.logFile, 4000))
			// Sent by one of ours, it is the pid-reuse bug come back; from
			// elsewhere, it is counted (the leak counts still hold).
			for _, l := range strings.Split(sent, "\n") {
				if sender := strings.TrimSpace(l); strings.HasPrefix(sender, "berth-runtime") || strings.HasPrefix(sender, "berth-shim") {
					t.Errorf("round %d: a Berth process signalled the restarted berthd: %s", round, l)
				}
			}
			d.kill()
			d.start(bin)
		}
		inconsistent += checkConsistent(t, d, round)
	}
	d.removeAllPods()
	after := countNet(t, d)
	leaks := map[string]int{
		"mounts": len(mountsUnder(d.dir)),
		"veths":  after.veths - before.veths,
		"leases": after.leases - before.leases,
		"netns":  after.netns - before.netns,
		// Fewer is no leak: a DEL also removes rules older runs left for its IP.
		"rules":      max(0, after.rules-before.rules),
		"cgroups":    len(chaosCgroups()),
		"shims":      len(processesMentioning("berth-shim --dir " + d.state)),
		"processes":  len(processesMentioning(d.state + "/")),
		"state dirs": entries(filepath.Join(d.state, "containers")) + entries(filepath.Join(d.state, "sandboxes")),
	}
	t.Logf("chaos: berthd exits at restart: %d", earlyExits)
	t.Logf("chaos: %d rounds, %d pods created with a running container, %d pods removed; inconsistent statuses %d; leaked: mounts %d, netns %d, veths %d, leases %d, iptables rules %d, cgroups %d, shims %d, processes %d, state dirs %d",
		rounds, created, removed, inconsistent, leaks["mounts"], leaks["netns"], leaks["veths"], leaks["leases"], leaks["rules"], leaks["cgroups"],
		leaks["shims"], leaks["processes"], leaks["state dirs"])
	for what, n := range leaks {
		if n != 0 {
			t.Errorf("%d %s leaked", n, what)
		}
	}
	if leaks["rules"] > 0 {
		t.Logf("iptables rules left: %s", strings.Join(slices.DeleteFunc(cniRules(t), func(r string) bool { return slices.Contains(rulesBefore, r) }), "\n"))
	}
	if leaks["cgroups"]+leaks["processes"] > 0 {
		t.Logf("cgroups left: %v\nprocesses left: %v", chaosCgroups(), processesMentioning(d.state+"/"))
	}
	if inconsistent != 0 {
		t.Errorf("%d inconsistent statuses", inconsistent)
	}
	if created == 0 {
		t.Error("no pod was created: the rounds did nothing")
	}
}

// checkConsistent counts what berthd says after a restart that is not so:
// a pod or container whose status call fails, a running container that does
// not answer an exec, a ready pod without its IP.
func checkConsistent(t *testing.T, d *daemon, round int) int {
	t.Helper()
	ctx := context.Background()
	bad := 0
	pods, err := d.rs.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Fatalf("round %d: ListPodSandbox after restart: %v", round, err)
	}
	for _, p := range pods {
		st, err := d.rs.PodSandboxStatus(ctx, p.Id, false)
		if err != nil || p.State == runtimeapi.PodSandboxState_SANDBOX_READY && st.GetStatus().GetNetwork().GetIp() == "" {
			t.Logf("round %d: pod %s: %v %v", round, p.Id, st.GetStatus(), err)
			bad++
		}
	}
	cs, err := d.rs.ListContainers(ctx, nil)
	if err != nil {
		t.Fatalf("round %d: ListContainers after restart: %v", round, err)
	}
	for _, c := range cs {
		st, err := d.rs.ContainerStatus(ctx, c.Id, false)
		if err != nil {
			t.Logf("round %d: container %s: %v", round, c.Id, err)
			bad++
			continue
		}
		if st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if _, _, err := d.rs.ExecSync(ctx, c.Id, []string{"true"}, 10*time.Second); err != nil {
				t.Logf("round %d: running container %s does not answer: %v", round, c.Id, err)
				bad++
			}
		}
	}
	return bad
}

// chaosCgroups lists the pod and container cgroups of the test left in
// every hierarchy.
func chaosCgroups() []string {
	var left []string
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu,cpuacct"} {
		ents, _ := os.ReadDir(filepath.Join(root, "berth-e2e"))
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), "chaos-") {
				left = append(left, filepath.Join(root, "berth-e2e", e.Name()))
			}
		}
	}
	return left
}

func entries(dir string) int {
	ents, _ := os.ReadDir(dir)
	return len(ents)
}

// tailFile is the last n bytes of the file at path, or why it could not be read.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tail(b, n)
}
