package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestDockerManage: the docker verbs that manage what exists — tag and
// history, rename (with a conflict refused), update of limits (seen in the
// container's cgroup) and of the restart policy, anonymous volumes (-v
// /path and the image's VOLUME) removed by rm -v and --rm, the prunes of
// containers, volumes and images, and system df.
func TestDockerManage(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	withVolume := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Volumes: []string{"/state"}}), host, "library/vol:1")
	unused := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Env: []string{"UNUSED=1"}}), host, "library/unused:1")
	for _, r := range []string{ref, withVolume, unused} {
		mustDocker(t, d, "pull", r)
	}

	// tag, history
	mustDocker(t, d, "tag", ref, "mine/box:v1")
	if out := mustDocker(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "mine/box:v1") {
		t.Errorf("docker images after tag: %q", out)
	}
	if out := mustDocker(t, d, "history", "--format", "{{.ID}} {{.Size}}", "mine/box:v1"); !strings.HasPrefix(out, "sha256:") && !regexp.MustCompile(`^[0-9a-f]{12} `).MatchString(out) {
		t.Errorf("docker history: %q", out)
	}
	if out := mustDocker(t, d, "rmi", "mine/box:v1"); !strings.Contains(out, "Untagged") || strings.Contains(out, "Deleted") {
		t.Errorf("rmi of one tag of several: %q, want only Untagged", out)
	}
	mustDocker(t, d, "image", "inspect", ref)
	if _, errOut, code := dockerCLI(t, d, "tag", "nosuch:1", "x:1"); code == 0 || !strings.Contains(errOut, "No such image") {
		t.Errorf("tag of a missing image: exit %d %q", code, errOut)
	}

	// rename, update
	mustDocker(t, d, "run", "-d", "--name", "first", ref, "sleep", "600")
	mustDocker(t, d, "run", "-d", "--name", "other", ref, "sleep", "600")
	mustDocker(t, d, "rename", "first", "second")
	if out := mustDocker(t, d, "ps", "--format", "{{.Names}}"); !strings.Contains(out, "second") || strings.Contains(out, "first") {
		t.Errorf("ps after rename: %q", out)
	}
	if _, errOut, code := dockerCLI(t, d, "rename", "second", "other"); code == 0 || !strings.Contains(errOut, "already in use") {
		t.Errorf("rename onto a taken name: exit %d %q", code, errOut)
	}
	mustDocker(t, d, "update", "--memory", "64m", "--restart", "always", "second")
	if out := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}", "second")); out != "67108864 always" {
		t.Errorf("inspect after update: %q", out)
	}
	limit := mustDocker(t, d, "exec", "second", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	if strings.TrimSpace(limit) != "67108864" {
		t.Errorf("the container's memory limit after update: %q", limit)
	}

	// anonymous volumes: -v /path and the image's VOLUME, gone with rm -v and --rm
	mustDocker(t, d, "run", "--name", "anon", "-v", "/data", withVolume, "sh", "-c", "echo x > /data/f; echo y > /state/g")
	var info []struct {
		Mounts []struct{ Type, Name, Destination string }
	}
	_ = json.Unmarshal([]byte(mustDocker(t, d, "inspect", "anon")), &info)
	if len(info) != 1 || len(info[0].Mounts) != 2 || info[0].Mounts[0].Type != "volume" || len(info[0].Mounts[0].Name) != 64 {
		t.Fatalf("inspect Mounts of anonymous volumes: %+v", info)
	}
	if n := len(strings.Fields(mustDocker(t, d, "volume", "ls", "-q"))); n != 2 {
		t.Errorf("%d volumes after a run with two anonymous ones", n)
	}
	mustDocker(t, d, "rm", "-v", "anon")
	mustDocker(t, d, "run", "--rm", "-v", "/data", withVolume, "true")
	if out := strings.TrimSpace(mustDocker(t, d, "volume", "ls", "-q")); out != "" {
		t.Errorf("volumes left after rm -v and --rm: %q", out)
	}

	// prunes
	mustDocker(t, d, "run", "--name", "done1", "-v", "/data", ref, "true")
	mustDocker(t, d, "run", "--name", "done2", ref, "true")
	mustDocker(t, d, "volume", "create", "named")
	out := mustDocker(t, d, "container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers") || strings.Count(out, "\n") < 3 {
		t.Errorf("container prune: %q", out)
	}
	if ps := mustDocker(t, d, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "done") || !strings.Contains(ps, "second") {
		t.Errorf("after container prune: %q", ps)
	}
	mustDocker(t, d, "volume", "prune", "-f")
	if out := strings.TrimSpace(mustDocker(t, d, "volume", "ls", "-q")); out != "named" {
		t.Errorf("volume prune: left %q, want only the named volume", out)
	}
	mustDocker(t, d, "volume", "prune", "-f", "--all")
	if out := strings.TrimSpace(mustDocker(t, d, "volume", "ls", "-q")); out != "" {
		t.Errorf("volume prune --all: left %q", out)
	}
	out = mustDocker(t, d, "image", "prune", "-a", "-f")
	if !strings.Contains(out, "unused") {
		t.Errorf("image prune -a: %q, want the unused image deleted", out)
	}
	if imgs := mustDocker(t, d, "images", "--format", "{{.Repository}}"); strings.Contains(imgs, "unused") || !strings.Contains(imgs, "busybox") {
		t.Errorf("images after prune -a: %q (the image a container uses must stay)", imgs)
	}

	// system df
	if out := mustDocker(t, d, "system", "df"); !strings.Contains(out, "Images") || !strings.Contains(out, "Containers") || !strings.Contains(out, "Local Volumes") {
		t.Errorf("docker system df: %q", out)
	}
	mustDocker(t, d, "system", "df", "-v")
	if out := mustDocker(t, d, "info", "--format", "{{range $k, $v := .Runtimes}}{{$k}} {{end}}{{.CgroupVersion}} {{.Driver}}"); !strings.Contains(out, "berth ") {
		t.Errorf("docker info's runtimes: %q", out)
	}

	mustDocker(t, d, "rm", "-f", "second", "other")
	if ents, _ := os.ReadDir(filepath.Join(d.dir, "root", "docker", "logs")); len(ents) != 0 {
		t.Errorf("log directories left after the renamed container's removal: %v", ents)
	}
	assertNothingLeft(t, d)
}
