package oci

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
	"github.com/berth-runtime/berth/oci/linux"
)

func TestProcessArgsFollowKubernetes(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"}}
	cases := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image only", nil, nil, []string{"/ep", "c1", "c2"}},
		{"args replace cmd", nil, []string{"a"}, []string{"/ep", "a"}},
		{"command replaces both", []string{"/bin/x"}, nil, []string{"/bin/x"}},
		{"command and args", []string{"/bin/x"}, []string{"a"}, []string{"/bin/x", "a"}},
	}
	for _, c := range cases {
		got := processArgs(img, &ContainerConfig{Command: c.command, Args: c.args})
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4"})
	want := []string{defaults.DefaultPath, "A=1", "B=3", "C=4"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestResolveUser(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\napp:x:1000:\nextra:x:2000:app\n"), 0o644)
	uid := int64(1000)
	cases := []struct {
		name      string
		imageUser string
		cfg       ContainerConfig
		uid, gid  uint32
		groups    []uint32
		wantErr   bool
	}{
		// The primary group is listed first among the supplementary ones, as
		// containerd and CRI-O list it (what `id -G` shows).
		{"default root", "", ContainerConfig{}, 0, 0, []uint32{0}, false},
		{"image user by name", "app", ContainerConfig{}, 1000, 1000, []uint32{1000, 2000}, false},
		{"uid:gid", "5:6", ContainerConfig{}, 5, 6, []uint32{6}, false},
		{"name:group", "app:extra", ContainerConfig{}, 1000, 2000, []uint32{2000}, false},
		{"run as user wins", "root", ContainerConfig{RunAsUser: &uid, SupplementalGroups: []int64{7}}, 1000, 1000, []uint32{1000, 2000, 7}, false},
		{"strict policy: no groups from the image", "app", ContainerConfig{StrictSupplementalGroups: true, SupplementalGroups: []int64{7}}, 1000, 1000, []uint32{1000, 7}, false},
		{"unknown user", "ghost", ContainerConfig{}, 0, 0, nil, true},
	}
	for _, c := range cases {
		u, err := resolveUser(rootfs, c.imageUser, &c.cfg)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v", c.name, err)
			continue
		}
		if err == nil && (u.UID != c.uid || u.GID != c.gid || !slices.Equal(u.AdditionalGids, c.groups)) {
			t.Errorf("%s: got %d:%d %v", c.name, u.UID, u.GID, u.AdditionalGids)
		}
	}
}

func TestBuildSpecMountsAndNamespaces(t *testing.T) {
	rootfs := t.TempDir()
	c := &ContainerConfig{
		Command:  []string{"sh"},
		Mounts:   []Mount{{ContainerPath: "/data/sub", HostPath: "/tmp"}, {ContainerPath: "/data", HostPath: "/var", Readonly: true}},
		EtcFiles: map[string]string{"/etc/hosts": "/h", "/etc/resolv.conf": "/r"},
		ShmPath:  "/shm",
		Namespaces: Namespaces{
			Network: "/ns/net", IPC: "/ns/ipc", UTS: "/ns/uts",
		},
	}
	s, err := BuildSpec(ocispec.ImageConfig{}, c, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	if slices.Index(dests, "/data") > slices.Index(dests, "/data/sub") {
		t.Errorf("parent mounted after child: %v", dests)
	}
	for _, d := range []string{"/etc/hosts", "/etc/resolv.conf", "/dev/shm"} {
		if !slices.Contains(dests, d) {
			t.Errorf("missing mount %s in %v", d, dests)
		}
	}
	paths := map[string]string{}
	for _, n := range s.Linux.Namespaces {
		paths[string(n.Type)] = n.Path
	}
	if paths["network"] != "/ns/net" || paths["ipc"] != "/ns/ipc" || paths["uts"] != "/ns/uts" {
		t.Errorf("namespaces: %v", paths)
	}
	if _, ok := paths["pid"]; !ok {
		t.Error("no new pid namespace")
	}
}

// Privileged and ALL mean the capabilities berthd itself may grant: on a host
// whose root lacks CAP_SYS_RESOURCE (this one), asking for it would fail
// every such container.
func TestAllCapabilitiesAreGrantable(t *testing.T) {
	grantable := linux.GrantableCapabilities()
	for _, c := range []ContainerConfig{{Privileged: true}, {AddCapabilities: []string{"ALL"}}} {
		var p specs.Process
		if err := setCapabilities(&p, &c); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Capabilities.Bounding, grantable) {
			t.Fatalf("%+v: bounding %v, want what this process holds %v", c, p.Capabilities.Bounding, grantable)
		}
	}
}

// A bidirectional (rshared) mount keeps the container's root shared, or
// nothing mounted under it would reach the host.
func TestBidirectionalMountSharesRoot(t *testing.T) {
	for prop, want := range map[string]string{"rshared": "rshared", "rslave": "", "private": ""} {
		s, err := BuildSpec(ocispec.ImageConfig{}, &ContainerConfig{Command: []string{"true"}, Mounts: []Mount{{ContainerPath: "/m", HostPath: "/tmp", Propagation: prop}}}, "/rootfs")
		if err != nil {
			t.Fatal(err)
		}
		if s.Linux.RootfsPropagation != want {
			t.Errorf("%s mount: rootfsPropagation %q, want %q", prop, s.Linux.RootfsPropagation, want)
		}
	}
}
