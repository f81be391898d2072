package cri

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/containers"
)

var eventTypes = map[containers.EventType]runtimeapi.ContainerEventType{
	containers.EventCreated: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	containers.EventStarted: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	containers.EventStopped: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	containers.EventDeleted: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams container lifecycle events as they happen, each
// with the pod's status and its containers' (what kubelet's evented PLEG reads).
func (s *Server) GetContainerEvents(r *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	evs, cancel := s.containers.Subscribe()
	defer cancel()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-evs:
			resp := &runtimeapi.ContainerEventResponse{
				ContainerId: ev.ContainerID, ContainerEventType: eventTypes[ev.Type], CreatedAt: ev.At.UnixNano(),
			}
			if sb, err := s.sandboxes.Get(ev.SandboxID); err == nil {
				resp.PodSandboxStatus = sandboxStatus(sb)
			}
			all, _ := s.containers.ListOwned("")
			for _, c := range all {
				if c.SandboxID == ev.SandboxID {
					resp.ContainersStatuses = append(resp.ContainersStatuses, s.containerStatus(c))
				}
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}
