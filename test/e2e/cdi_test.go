package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestCDI: Container Device Interface devices from spec files of the
// test's own (no accelerator needed: a device node made from /dev/null, a
// mount, environment, a hook), through the CRI's CDIDevices and
// cdi.k8s.io/ annotations, and Docker's --device vendor.com/class=name and
// --gpus. An unknown device is refused naming it, and nothing is left.
func TestCDI(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	specDir, shared := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "file"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hookRan := filepath.Join(shared, "hook-ran")
	spec := fmt.Sprintf(`cdiVersion: "0.6.0"
kind: "berth.test/device"
devices:
- name: one
  containerEdits:
    env: ["BERTH_CDI=one"]
    deviceNodes:
    - path: /dev/berth-cdi-null
      hostPath: /dev/null
    mounts:
    - hostPath: %s
      containerPath: /cdi
      options: ["ro", "rbind"]
    hooks:
    - hookName: createRuntime
      path: /bin/sh
      args: ["sh", "-c", "echo hooked >> %s"]
- name: two
  containerEdits:
    env: ["BERTH_CDI_TWO=yes"]
`, shared, hookRan)
	if err := os.WriteFile(filepath.Join(specDir, "berth-test.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, fmt.Sprintf("cdi_spec_dirs = [%q]\n", specDir))
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := pulledBusybox(t, d)
	ctx := context.Background()
	probe := `test -c /dev/berth-cdi-null && cat /cdi/file && echo "$BERTH_CDI $BERTH_CDI_TWO"`

	// The CRI: CDIDevices and a device plugin's annotation.
	logDir := filepath.Join(d.dir, "pods", "cdi")
	pod := podConfig("cdi", logDir)
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "gpu"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sh", "-c", probe}, LogPath: "gpu.log",
		CDIDevices:  []*runtimeapi.CDIDevice{{Name: "berth.test/device=one"}},
		Annotations: map[string]string{"cdi.k8s.io/berth-test_two": "berth.test/device=two"},
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if st := waitExited(t, d, cid); st.ExitCode != 0 {
		b, _ := os.ReadFile(filepath.Join(logDir, "gpu.log"))
		t.Fatalf("the CDI devices' container exited %d: %s", st.ExitCode, b)
	}
	if b, _ := os.ReadFile(filepath.Join(logDir, "gpu.log")); !strings.Contains(string(b), "from the host") || !strings.Contains(string(b), "one yes") {
		t.Errorf("in the container: %q", b)
	}
	if b, _ := os.ReadFile(hookRan); string(b) != "hooked\n" {
		t.Errorf("the spec's createRuntime hook: %q", b)
	}
	for _, bad := range []*runtimeapi.ContainerConfig{
		{Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: ref}, CDIDevices: []*runtimeapi.CDIDevice{{Name: "berth.test/device=nine"}}},
		{Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: ref}, Annotations: map[string]string{"cdi.k8s.io/x": "not-a-device"}},
	} {
		_, err := d.rs.CreateContainer(ctx, podID, bad, pod)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "device") {
			t.Errorf("CreateContainer with %v %v: %v, want InvalidArgument naming the device", bad.CDIDevices, bad.Annotations, err)
		}
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}

	// Docker: --device with a CDI name or a host path, --gpus through CDI.
	if out := mustDocker(t, d, "run", "--rm", "--network", "none", "--device", "berth.test/device=one", "--device", "berth.test/device=two", ref, "sh", "-c", probe); !strings.Contains(out, "one yes") {
		t.Errorf("docker run --device berth.test/device=one: %q", out)
	}
	if out := mustDocker(t, d, "run", "--rm", "--network", "none", "--device", "/dev/null:/dev/mynull", ref, "sh", "-c", "test -c /dev/mynull && echo ok"); out != "ok\n" {
		t.Errorf("docker run --device /dev/null:/dev/mynull: %q", out)
	}
	for _, c := range []struct{ args, want string }{
		{"--device berth.test/device=nine", "berth.test/device=nine"},
		{"--device /dev/nosuch", "/dev/nosuch"},
		{"--gpus all", "nvidia.com/gpu=all"},
	} {
		args := append([]string{"run", "--rm", "--network", "none"}, strings.Fields(c.args)...)
		if _, errOut, code := dockerCLI(t, d, append(args, ref, "true")...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker run %s: exit %d %q, want a refusal naming %s", c.args, code, errOut, c.want)
		}
	}
	gpu := `cdiVersion: "0.6.0"
kind: "nvidia.com/gpu"
devices:
- name: all
  containerEdits:
    env: ["NVIDIA_VISIBLE_DEVICES=all"]
- name: "0"
  containerEdits:
    env: ["NVIDIA_VISIBLE_DEVICES=0"]
`
	if err := os.WriteFile(filepath.Join(specDir, "nvidia.yaml"), []byte(gpu), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ flag, want string }{{"all", "all"}, {"1", "0"}, {"device=0", "0"}} {
		if out := mustDocker(t, d, "run", "--rm", "--network", "none", "--gpus", c.flag, ref, "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"); strings.TrimSpace(out) != c.want {
			t.Errorf("docker run --gpus %s: %q, want %q", c.flag, out, c.want)
		}
	}
	if out := strings.TrimSpace(mustDocker(t, d, "ps", "-aq")); out != "" {
		t.Errorf("refused runs left containers: %s", out)
	}
	assertNothingLeft(t, d)
}
