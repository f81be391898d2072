package cri

import (
	"math"
	"testing"

	"github.com/berth-runtime/berth/cni"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBandwidthAnnotations(t *testing.T) {
	for _, c := range []struct {
		ann  map[string]string
		want *cni.Bandwidth
		bad  bool
	}{
		{ann: nil, want: nil},
		{ann: map[string]string{"kubernetes.io/ingress-bandwidth": "10M"}, want: &cni.Bandwidth{IngressRate: 10e6, IngressBurst: math.MaxUint32}},
		{ann: map[string]string{"kubernetes.io/egress-bandwidth": "1Gi"}, want: &cni.Bandwidth{EgressRate: 1 << 30, EgressBurst: math.MaxUint32}},
		{ann: map[string]string{"kubernetes.io/ingress-bandwidth": "2k", "kubernetes.io/egress-bandwidth": "3000"},
			want: &cni.Bandwidth{IngressRate: 2000, IngressBurst: math.MaxUint32, EgressRate: 3000, EgressBurst: math.MaxUint32}},
		{ann: map[string]string{"kubernetes.io/ingress-bandwidth": "fast"}, bad: true},
		{ann: map[string]string{"kubernetes.io/ingress-bandwidth": "10"}, bad: true}, // under 1k
		{ann: map[string]string{"kubernetes.io/egress-bandwidth": "99999999999999999999T"}, bad: true},
	} {
		got, err := bandwidth(c.ann)
		if c.bad {
			if err == nil {
				t.Errorf("%v: no error", c.ann)
			}
			continue
		}
		if err != nil || (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%v: %+v %v, want %+v", c.ann, got, err, c.want)
		}
	}
}

// A recursive read-only mount must be read-only and private (the CRI's rules).
func TestRecursiveReadOnlyMountRules(t *testing.T) {
	for _, c := range []struct {
		m  *runtimeapi.Mount
		ok bool
	}{
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true}, true},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/tmp", RecursiveReadOnly: true}, false},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, false},
	} {
		cc, err := containerConfig(&runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{c.m}})
		if (err == nil) != c.ok || (c.ok && !cc.Mounts[0].RecursiveReadonly) {
			t.Errorf("%+v: %v", c.m, err)
		}
	}
}

// FuzzContainerConfig: any CreateContainer config kubelet (or anyone on the
// socket) sends is translated or refused with InvalidArgument; nothing panics.
func FuzzContainerConfig(f *testing.F) {
	for _, c := range []*runtimeapi.ContainerConfig{
		{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}, Command: []string{"sh"}},
		{Mounts: []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true}}},
		{Mounts: []*runtimeapi.Mount{{ContainerPath: "/i", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "x"}, ImageSubPath: "../.."}}},
		{Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			RunAsGroup: &runtimeapi.Int64Value{Value: 5}, Privileged: true,
			Capabilities:     &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"NET_RAW"}},
			Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost},
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET},
		}}},
	} {
		b, err := proto.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c runtimeapi.ContainerConfig
		if proto.Unmarshal(data, &c) != nil {
			return
		}
		if _, err := containerConfig(&c); err != nil && status.Code(err) != codes.InvalidArgument {
			t.Fatalf("refused with %v", err)
		}
	})
}

// TestUserNamespaceOptions: no usernsOptions is the node's namespace (POD
// is the enum's zero value); POD needs one mapping of root per kind.
func TestUserNamespaceOptions(t *testing.T) {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	for _, c := range []struct {
		ns      *runtimeapi.NamespaceOption
		own, ok bool
	}{
		{nil, false, true},
		{&runtimeapi.NamespaceOption{}, false, true},
		{&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}, false, true},
		{&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}}, true, true},
		{&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m}}, false, false},
		{&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: m, Gids: m}}, false, false},
		{&runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}}, false, false},
		{&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: []*runtimeapi.IDMapping{{HostId: 4294967295, Length: 2}}, Gids: m}}, false, false},
	} {
		u, err := userNamespace(c.ns)
		if (err == nil) != c.ok || (u != nil) != c.own {
			t.Errorf("%v: %+v, %v; want own %v, ok %v", c.ns, u, err, c.own, c.ok)
		}
	}
}
