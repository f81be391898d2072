package nri

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/berth-runtime/berth/internal/store"
	api "github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// RunPod tells plugins of a pod about to be ready; an error fails the pod.
func (n *NRI) RunPod(ctx context.Context, sb store.Sandbox) error {
	if n == nil {
		return nil
	}
	if err := n.a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: podOf(sb)}); err != nil {
		return fmt.Errorf("NRI RunPodSandbox: %w", err)
	}
	return nil
}

// UpdatePod tells plugins of a pod's new resources (in-place resize).
func (n *NRI) UpdatePod(ctx context.Context, sb store.Sandbox, overhead, res *specs.LinuxResources) error {
	if n == nil {
		return nil
	}
	_, err := n.a.UpdatePodSandbox(ctx, &api.UpdatePodSandboxRequest{
		Pod: podOf(sb), OverheadLinuxResources: api.FromOCILinuxResources(overhead, nil),
		LinuxResources: api.FromOCILinuxResources(res, nil),
	})
	if err != nil {
		return fmt.Errorf("NRI UpdatePodSandbox: %w", err)
	}
	return nil
}

// PostUpdatePod tells plugins a pod's resources were changed.
func (n *NRI) PostUpdatePod(ctx context.Context, sb store.Sandbox) {
	if n != nil {
		n.note("PostUpdatePodSandbox", sb.ID, n.a.PostUpdatePodSandbox(ctx, &api.PostUpdatePodSandboxRequest{Pod: podOf(sb)}))
	}
}

// StopPod tells plugins a pod is stopping (its containers have stopped).
// Plugins cannot refuse a stop: their errors are logged.
func (n *NRI) StopPod(ctx context.Context, sb store.Sandbox) {
	if n != nil {
		n.note("StopPodSandbox", sb.ID, n.a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: podOf(sb)}))
	}
}

// RemovePod tells plugins a pod is gone.
func (n *NRI) RemovePod(ctx context.Context, sb store.Sandbox) {
	if n != nil {
		n.note("RemovePodSandbox", sb.ID, n.a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: podOf(sb)}))
	}
}

// CreateContainer asks plugins for their adjustments to a container about
// to be created; updates and evictions of other containers they ask for
// are carried out here. An error fails the container.
func (n *NRI) CreateContainer(ctx context.Context, sb store.Sandbox, c Container) (*api.ContainerAdjustment, error) {
	if n == nil {
		return nil, nil
	}
	rpl, err := n.a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: podOf(sb), Container: containerOf(c)})
	if err != nil {
		return nil, fmt.Errorf("NRI CreateContainer: %w", err)
	}
	if _, err := n.update(ctx, rpl.GetUpdate()); err != nil {
		return nil, fmt.Errorf("NRI CreateContainer: %w", err)
	}
	n.evict(ctx, rpl.GetEvict())
	return rpl.GetAdjust(), nil
}

// PostCreateContainer tells plugins the container was created.
func (n *NRI) PostCreateContainer(ctx context.Context, sb store.Sandbox, c Container) {
	if n != nil {
		n.note("PostCreateContainer", c.Rec.ID, n.a.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: podOf(sb), Container: containerOf(c)}))
	}
}

// StartContainer tells plugins a container is about to start; an error
// fails the start.
func (n *NRI) StartContainer(ctx context.Context, sb store.Sandbox, c Container) error {
	if n == nil {
		return nil
	}
	if err := n.a.StartContainer(ctx, &api.StartContainerRequest{Pod: podOf(sb), Container: containerOf(c)}); err != nil {
		return fmt.Errorf("NRI StartContainer: %w", err)
	}
	return nil
}

// PostStartContainer tells plugins the container started.
func (n *NRI) PostStartContainer(ctx context.Context, sb store.Sandbox, c Container) {
	if n != nil {
		n.note("PostStartContainer", c.Rec.ID, n.a.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: podOf(sb), Container: containerOf(c)}))
	}
}

// UpdateContainer asks plugins for their say on a container's new
// resources and returns what is to be applied.
func (n *NRI) UpdateContainer(ctx context.Context, sb store.Sandbox, c Container, r *specs.LinuxResources) (*specs.LinuxResources, error) {
	if n == nil {
		return r, nil
	}
	rpl, err := n.a.UpdateContainer(ctx, &api.UpdateContainerRequest{
		Pod: podOf(sb), Container: containerOf(c), LinuxResources: api.FromOCILinuxResources(r, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("NRI UpdateContainer: %w", err)
	}
	var mine *specs.LinuxResources
	var others []*api.ContainerUpdate
	for _, u := range rpl.GetUpdate() {
		if u.GetContainerId() == c.Rec.ID {
			mine = u.GetLinux().GetResources().ToOCI()
			continue
		}
		others = append(others, u)
	}
	if _, err := n.update(ctx, others); err != nil {
		return nil, fmt.Errorf("NRI UpdateContainer: %w", err)
	}
	n.evict(ctx, rpl.GetEvict())
	if mine == nil {
		return r, nil
	}
	return mine, nil
}

// PostUpdateContainer tells plugins a container's resources changed.
func (n *NRI) PostUpdateContainer(ctx context.Context, sb store.Sandbox, c Container) {
	if n != nil {
		n.note("PostUpdateContainer", c.Rec.ID, n.a.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: podOf(sb), Container: containerOf(c)}))
	}
}

// StopContainer tells plugins a container has stopped (by a stop, or by
// exiting on its own); their updates to other containers are applied.
func (n *NRI) StopContainer(ctx context.Context, sb store.Sandbox, c Container) {
	if n == nil {
		return
	}
	rpl, err := n.a.StopContainer(ctx, &api.StopContainerRequest{Pod: podOf(sb), Container: containerOf(c)})
	n.note("StopContainer", c.Rec.ID, err)
	if err == nil {
		_, _ = n.update(ctx, rpl.GetUpdate())
	}
}

// RemoveContainer tells plugins a container is gone.
func (n *NRI) RemoveContainer(ctx context.Context, sb store.Sandbox, c Container) {
	if n != nil {
		n.note("RemoveContainer", c.Rec.ID, n.a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: podOf(sb), Container: containerOf(c)}))
	}
}

// note logs a plugin's error for an event it cannot refuse.
func (n *NRI) note(event, id string, err error) {
	if err != nil {
		n.log.Warn("NRI plugin failed "+event, slog.String("id", id), slog.Any("error", err))
	}
}
