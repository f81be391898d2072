package cri

import (
	"context"
	"encoding/json"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/store"
)

// ContainerStatus reports a container's state, times and exit.
func (s *Server) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if r.ContainerId == "" {
		return nil, invalid("ContainerStatus: container_id is required")
	}
	rec, err := s.container(r.ContainerId)
	if err != nil {
		return nil, toStatus(err)
	}
	id := rec.ID
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(rec)}
	if r.Verbose && rec.State != store.ContainerExited {
		// Whether the shim answers: a stuck one is visible here before a stop needs it.
		shim, err := s.containers.Shim(ctx, id)
		if err != nil {
			return nil, toStatus(err)
		}
		b, err := json.Marshal(map[string]any{"shim": shim})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

func (s *Server) containerStatus(rec store.Container) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          rec.ID,
		Metadata:    &runtimeapi.ContainerMetadata{Name: rec.Name, Attempt: rec.Attempt},
		State:       containerState(rec.State),
		CreatedAt:   rec.CreatedAt.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: rec.ImageRef},
		StopSignal:  criSignal(rec.StopSignal),
		ImageRef:    rec.ImageID,
		ImageId:     rec.ImageID,
		Reason:      rec.Reason,
		Message:     rec.Message,
		Labels:      rec.Labels,
		Annotations: rec.Annotations,
		LogPath:     rec.LogPath,
	}
	if !rec.StartedAt.IsZero() {
		st.StartedAt = rec.StartedAt.UnixNano()
	}
	if rec.State == store.ContainerExited {
		st.FinishedAt = rec.FinishedAt.UnixNano()
		st.ExitCode = rec.ExitCode
	}
	if u := rec.User; u != nil {
		groups := make([]int64, len(u.Groups))
		for i, g := range u.Groups {
			groups[i] = int64(g)
		}
		st.User = &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups}}
	}
	// The mounts as the CRI asked for them: the record keeps its request.
	var cfg runtimeapi.ContainerConfig
	if proto.Unmarshal(rec.Config, &cfg) == nil {
		if res := cfg.GetLinux().GetResources(); res != nil {
			st.Resources = &runtimeapi.ContainerResources{Linux: res}
		}
		for _, m := range cfg.Mounts {
			st.Mounts = append(st.Mounts, &runtimeapi.Mount{
				ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
				RecursiveReadOnly: m.RecursiveReadOnly, SelinuxRelabel: m.SelinuxRelabel, Propagation: m.Propagation,
				UidMappings: m.UidMappings, GidMappings: m.GidMappings, ImageSubPath: m.ImageSubPath,
			})
			if ref := m.GetImage().GetImage(); ref != "" {
				st.Mounts[len(st.Mounts)-1].Image = &runtimeapi.ImageSpec{Image: ref, ImageRef: s.imageRef(ref)}
			}
		}
	}
	return st
}

func containerState(s store.ContainerState) runtimeapi.ContainerState {
	switch s {
	case store.ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case store.ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case store.ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// imageRef is the image ID a reference names now, for an image volume's
// status; the reference itself when the image has gone.
func (s *Server) imageRef(ref string) string {
	if img, err := s.images.Resolve(ref); err == nil {
		return img.ID
	}
	return ref
}
