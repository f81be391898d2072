package cdi

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// A spec of our own: a device node, a mount, environment and a hook, for
// the device and for every device of the spec.
func writeSpec(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const testSpec = `cdiVersion: "0.6.0"
kind: "berth.test/device"
containerEdits:
  env: ["BERTH_CDI_SPEC=yes"]
devices:
- name: one
  containerEdits:
    env: ["BERTH_CDI=one"]
    deviceNodes:
    - path: /dev/berth-cdi-null
      hostPath: /dev/null
    mounts:
    - hostPath: /etc/hostname
      containerPath: /cdi/hostname
      options: ["ro", "bind"]
    hooks:
    - hookName: createRuntime
      path: /bin/true
- name: two
  containerEdits:
    env: ["BERTH_CDI=two"]
`

func TestInject(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, "berth.yaml", testSpec)
	r, err := New([]string{dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Devices(); !slices.Equal(got, []string{"berth.test/device=one", "berth.test/device=two"}) {
		t.Fatalf("devices: %v", got)
	}
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	if err := r.Inject(spec, []string{"berth.test/device=one", "berth.test/device=one"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Env, "BERTH_CDI=one") || !slices.Contains(spec.Process.Env, "BERTH_CDI_SPEC=yes") {
		t.Errorf("env: %v", spec.Process.Env)
	}
	if len(spec.Linux.Devices) != 1 || spec.Linux.Devices[0].Path != "/dev/berth-cdi-null" || spec.Linux.Devices[0].Major != 1 || spec.Linux.Devices[0].Minor != 3 {
		t.Errorf("device nodes: %+v", spec.Linux.Devices)
	}
	if len(spec.Mounts) != 1 || spec.Mounts[0].Destination != "/cdi/hostname" {
		t.Errorf("mounts: %+v", spec.Mounts)
	}
	if spec.Hooks == nil || len(spec.Hooks.CreateRuntime) != 1 {
		t.Errorf("hooks: %+v", spec.Hooks)
	}
	if spec.Linux.Resources == nil || !slices.ContainsFunc(spec.Linux.Resources.Devices, func(d specs.LinuxDeviceCgroup) bool {
		return d.Allow && d.Major != nil && *d.Major == 1 && d.Minor != nil && *d.Minor == 3
	}) {
		t.Errorf("the device's cgroup rule: %+v", spec.Linux.Resources)
	}

	for _, c := range []struct{ devices []string }{{[]string{"berth.test/device=three"}}, {[]string{"not-qualified"}}} {
		err := r.Inject(&specs.Spec{Process: &specs.Process{}}, c.devices)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.devices[0]) {
			t.Errorf("%v: %v, want an invalid argument naming it", c.devices, err)
		}
	}

	// A broken file is named when a device cannot be found; a new file is
	// read without a restart.
	writeSpec(t, dir, "broken.yaml", "cdiVersion: [\n")
	writeSpec(t, dir, "more.yaml", strings.ReplaceAll(strings.ReplaceAll(testSpec, "berth.test/device", "berth.test/more"), "/dev/berth-cdi-null", "/dev/more"))
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(r.Devices(), "berth.test/more=one") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.Inject(&specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}, []string{"berth.test/more=two"}); err != nil {
		t.Fatalf("a spec file added while running: %v", err)
	}
	err = r.Inject(&specs.Spec{Process: &specs.Process{}}, []string{"berth.test/device=nine"})
	if err == nil || !strings.Contains(err.Error(), "broken.yaml") {
		t.Errorf("with a broken spec file: %v, want it named", err)
	}
}
