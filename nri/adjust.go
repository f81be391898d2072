package nri

import (
	"fmt"

	api "github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	"github.com/opencontainers/runtime-spec/specs-go"
	rtgen "github.com/opencontainers/runtime-tools/generate"
)

// Adjust applies plugins' adjustment to a container's spec: annotations,
// env, args, hooks, devices, CDI devices (through inject; nil refuses
// them), mounts, rlimits, resources, cgroups path, OOM score, I/O priority,
// seccomp policy, namespaces, sysctls, scheduler and memory policy.
func Adjust(spec *specs.Spec, adj *api.ContainerAdjustment, inject func(*specs.Spec, []string) error) error {
	if adj == nil {
		return nil
	}
	if inject == nil {
		inject = func(_ *specs.Spec, devices []string) error {
			return fmt.Errorf("NRI plugins asked for CDI devices %v, but CDI is off (cdi_spec_dirs is empty in berthd's config)", devices)
		}
	}
	g := rtgen.NewFromSpec(spec)
	ng := nrigen.SpecGenerator(&g, nrigen.WithCDIDeviceInjector(inject))
	if err := ng.Adjust(adj); err != nil {
		return fmt.Errorf("apply NRI plugins' adjustment: %w", err)
	}
	return nil
}
