package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/nri"
)

// NRIDomain is what NRI plugins are answered from: the pods and containers
// they synchronize with, the updates and evictions they ask for.
func (s *Service) NRIDomain() nri.Domain { return nriDomain{s} }

type nriDomain struct{ s *Service }

func (d nriDomain) List(ctx context.Context) ([]store.Sandbox, []nri.Container, error) {
	pods, err := d.s.sandboxes.List()
	if err != nil {
		return nil, nil, err
	}
	all, err := d.s.db.Containers.List()
	if err != nil {
		return nil, nil, err
	}
	ctrs := make([]nri.Container, 0, len(all))
	for _, rec := range all {
		ctrs = append(ctrs, d.s.nriContainer(rec))
	}
	return pods, ctrs, nil
}

func (d nriDomain) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	rec, err := d.s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	return d.s.updateResources(ctx, rec, r)
}

func (d nriDomain) Evict(ctx context.Context, id, reason string) error {
	d.s.log.Warn("stopping a container an NRI plugin evicted", "container", id, "reason", reason)
	return d.s.Stop(ctx, id, 0)
}

// nriContainer is rec with the spec it was created with, as plugins see it.
func (s *Service) nriContainer(rec store.Container) nri.Container {
	c := nri.Container{Rec: rec}
	if b, err := os.ReadFile(filepath.Join(rec.Dir, "bundle", "config.json")); err == nil {
		var sp specs.Spec
		if json.Unmarshal(b, &sp) == nil {
			c.Spec = &sp
		}
	}
	return c
}

// nriPod is the record of rec's pod for an NRI event (empty but for the ID
// when the pod is gone already).
func (s *Service) nriPod(sandboxID string) store.Sandbox {
	sb, err := s.sandboxes.Get(sandboxID)
	if err != nil {
		return store.Sandbox{ID: sandboxID}
	}
	return sb
}

// nriStopped tells plugins a container has stopped: once, when its exit is
// recorded (a stop, a kill, or its own exit).
func (s *Service) nriStopped(rec store.Container) {
	if !s.cfg.NRI.Active() {
		return
	}
	s.cfg.NRI.StopContainer(context.WithoutCancel(s.ctx), s.nriPod(rec.SandboxID), s.nriContainer(rec))
}

// adjustByNRI gives NRI plugins their say on a container about to be
// created, and applies it to its spec; rec takes what the spec changes.
func (s *Service) adjustByNRI(ctx context.Context, sb store.Sandbox, rec *store.Container, spec *specs.Spec, cdiDevices []string) error {
	adj, err := s.cfg.NRI.CreateContainer(ctx, sb, nri.Container{Rec: *rec, Spec: spec, CDIDevices: cdiDevices})
	if err != nil || adj == nil {
		return err
	}
	var inject func(*specs.Spec, []string) error
	if s.cfg.CDI != nil {
		inject = s.cfg.CDI.Inject
	}
	if err := nri.Adjust(spec, adj, inject); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		v := s.oom.clamp(*spec.Process.OOMScoreAdj)
		spec.Process.OOMScoreAdj = &v
	}
	if spec.Linux != nil && spec.Linux.CgroupsPath != "" {
		rec.CgroupsPath = spec.Linux.CgroupsPath
	}
	return nil
}
