package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/test/fixtures"
)

// usernsMapping is the one mapping kubelet sends for a pod with
// hostUsers: false: 65536 IDs at a multiple of 65536.
var usernsMapping = []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 196608, Length: 65536}}

// TestPodUserNamespace: a pod with a user namespace of its own. Its root is
// host uid 196608, in every container and exec, yet owns the image's
// files (idmapped layers) and the files it writes (which the host sees as
// 196608's); it mounts sysfs and /proc of namespaces its user namespace
// owns; a shared PID namespace holds it too. Nothing is left after removal.
func TestPodUserNamespace(t *testing.T) {
	if !linux.IDMappedOverlay() {
		t.Skip("this kernel cannot idmap overlayfs layers (5.19) or has user namespaces off")
	}
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	st, err := d.rs.Status(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.GetRuntimeHandlers() {
		if h.GetName() == "" && !h.GetFeatures().GetUserNamespaces() {
			t.Fatalf("the default handler does not claim user namespaces: %+v", h)
		}
	}
	ref := pulledBusybox(t, d)
	pod := podConfig("userns", filepath.Join(d.dir, "pods", "userns"))
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: usernsMapping, Gids: usernsMapping},
	}}
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := d.rs.PodSandboxStatus(ctx, podID, false)
	if err != nil {
		t.Fatal(err)
	}
	if u := ps.GetStatus().GetLinux().GetNamespaces().GetOptions().GetUsernsOptions(); u.GetMode() != runtimeapi.NamespaceMode_POD || len(u.GetUids()) != 1 || u.GetUids()[0].GetHostId() != 196608 {
		t.Fatalf("PodSandboxStatus usernsOptions: %+v", u)
	}
	vol := t.TempDir() // root's, 0700: the pod's root gets in only through the idmapped bind
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sh", "-c", "echo hi > /written && echo vol > /data/out && sleep 600"},
		Mounts:  []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: vol, UidMappings: usernsMapping, GidMappings: usernsMapping}},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: pod.Linux.SecurityContext.NamespaceOptions}},
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for range 50 {
		out, _, err = d.rs.ExecSync(ctx, cid, []string{"sh", "-c",
			"cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u:%g /bin/busybox /written; ls /sys/class/net; ps -o pid,args"}, 10*time.Second)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // /written is not there yet
	}
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	want := []string{"0", "196608", "65536", "0", "196608", "65536", "0", "0:0", "0:0"}
	if len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("in the pod, want mappings, uid 0 and own files (%v); got:\n%s", want, out)
	}
	if !strings.Contains(string(out), "lo") || !strings.Contains(string(out), "berth-pause") {
		t.Fatalf("sysfs of the pod's network, or its shared PID namespace, missing:\n%s", out)
	}
	// On the host, what it wrote belongs to the uid it runs as.
	written := filepath.Join(d.root, "snapshots", "containers", cid, "upper", "written")
	fi, err := os.Stat(written)
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 196608 {
		t.Fatalf("%s is uid %d on the host, want 196608", written, uid)
	}
	// What it wrote in the idmapped volume is the host root's.
	if fi, err = os.Stat(filepath.Join(vol, "out")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("the volume's file: %v %v, want it the host root's", fi, err)
	}
	d.removeAllPods()
	assertNothingLeft(t, d)
}

// TestPodUserNamespaceRefused: what a pod's user namespace cannot be.
func TestPodUserNamespaceRefused(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	two := []*runtimeapi.IDMapping{usernsMapping[0], {ContainerId: 65536, HostId: 300000, Length: 10}}
	notRoot := []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 196608, Length: 65536}}
	for name, ns := range map[string]*runtimeapi.NamespaceOption{
		"container mode": {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}},
		"target mode":    {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}},
		"two mappings":   {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: two, Gids: two}},
		"root unmapped":  {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: notRoot, Gids: notRoot}},
		"no mappings":    {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}},
		"host network": {Network: runtimeapi.NamespaceMode_NODE,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: usernsMapping, Gids: usernsMapping}},
	} {
		pod := podConfig("refused", filepath.Join(d.dir, "pods", "refused"))
		pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}
		_, err := d.rs.RunPodSandbox(ctx, pod, "")
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: RunPodSandbox: %v, want InvalidArgument", name, err)
		}
	}
	// Mappings on a mount of a pod without a user namespace are refused.
	pod := podConfig("plain", filepath.Join(d.dir, "pods", "plain"))
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: pulledBusybox(t, d)},
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: t.TempDir(), UidMappings: usernsMapping, GidMappings: usernsMapping}},
	}, pod)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("idmapped mount in a pod without a user namespace: %v, want InvalidArgument", err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if pods, _ := d.rs.ListPodSandbox(ctx, nil); len(pods) > 0 {
		t.Fatalf("refused pods left %d sandboxes", len(pods))
	}
	assertNothingLeft(t, d)
}
