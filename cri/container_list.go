package cri

import (
	"context"
	"strings"

	"github.com/berth-runtime/berth/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, filtered by ID (or prefix), sandbox, state and labels.
func (s *Server) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	all, err := s.containers.ListOwned("")
	if err != nil {
		return nil, toStatus(err)
	}
	out := []*runtimeapi.Container{}
	for _, rec := range all {
		if containerMatches(rec, r.GetFilter()) {
			out = append(out, criContainer(rec))
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// containerMatches is ListContainers' filter.
func containerMatches(rec store.Container, f *runtimeapi.ContainerFilter) bool {
	if f == nil {
		return true
	}
	return (f.Id == "" || strings.HasPrefix(rec.ID, f.Id)) &&
		(f.PodSandboxId == "" || strings.HasPrefix(rec.SandboxID, f.PodSandboxId)) &&
		(f.State == nil || f.State.State == containerState(rec.State)) &&
		labelsMatch(rec.Labels, f.LabelSelector)
}

// criContainer is a container as the CRI lists it.
func criContainer(rec store.Container) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id: rec.ID, PodSandboxId: rec.SandboxID,
		Metadata: &runtimeapi.ContainerMetadata{Name: rec.Name, Attempt: rec.Attempt},
		Image:    &runtimeapi.ImageSpec{Image: rec.ImageRef}, ImageRef: rec.ImageID, ImageId: rec.ImageID,
		State: containerState(rec.State), CreatedAt: rec.CreatedAt.UnixNano(),
		Labels: rec.Labels, Annotations: rec.Annotations,
	}
}

func (s *Server) containerID(idOrPrefix string) (string, error) {
	// kubelet names a container by its whole ID: one read, not a scan of
	// every record (ExecSync probes take this path every few seconds).
	if rec, err := s.containers.Get(idOrPrefix); err == nil && rec.Owner == "" {
		return rec.ID, nil
	}
	all, err := s.containers.ListOwned("")
	if err != nil {
		return "", err
	}
	ids := make([]string, len(all))
	for i, rec := range all {
		ids[i] = rec.ID
	}
	return matchID("container", idOrPrefix, ids)
}

// container is the record of the container an ID or unique prefix names.
func (s *Server) container(idOrPrefix string) (store.Container, error) {
	id, err := s.containerID(idOrPrefix)
	if err != nil {
		return store.Container{}, err
	}
	return s.containers.Get(id)
}
