package cri

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The streaming lists (kubelet's CRIListStreaming): each answers as its List
// call does, with the same filters, in messages of at most streamBatchBytes,
// so that no answer meets gRPC's message limit however many pods and
// containers (and however large their labels) the node holds.

// streamBatchBytes bounds one message: well under the 16 MiB kubelet
// accepts, and the 4 MiB that gRPC clients accept by default.
const streamBatchBytes = 2 << 20

// sendBatches sends items in batches of at most streamBatchBytes each (one
// larger item alone); nothing when there are none.
func sendBatches[T proto.Message](items []T, send func([]T) error) error {
	var batch []T
	size := 0
	for _, it := range items {
		n := proto.Size(it)
		if len(batch) > 0 && size+n > streamBatchBytes {
			if err := send(batch); err != nil {
				return err
			}
			batch, size = nil, 0
		}
		batch = append(batch, it)
		size += n
	}
	if len(batch) > 0 {
		return send(batch)
	}
	return nil
}

func (s *Server) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := s.ListPodSandbox(st.Context(), &runtimeapi.ListPodSandboxRequest{Filter: r.Filter})
	if err != nil {
		return err
	}
	return sendBatches(resp.Items, func(b []*runtimeapi.PodSandbox) error {
		return st.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b})
	})
}

func (s *Server) StreamContainers(r *runtimeapi.StreamContainersRequest, st grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := s.ListContainers(st.Context(), &runtimeapi.ListContainersRequest{Filter: r.Filter})
	if err != nil {
		return err
	}
	return sendBatches(resp.Containers, func(b []*runtimeapi.Container) error {
		return st.Send(&runtimeapi.StreamContainersResponse{Containers: b})
	})
}

func (s *Server) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, st grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	resp, err := s.ListContainerStats(st.Context(), &runtimeapi.ListContainerStatsRequest{Filter: r.Filter})
	if err != nil {
		return err
	}
	return sendBatches(resp.Stats, func(b []*runtimeapi.ContainerStats) error {
		return st.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: b})
	})
}

func (s *Server) StreamPodSandboxStats(r *runtimeapi.StreamPodSandboxStatsRequest, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	resp, err := s.ListPodSandboxStats(st.Context(), &runtimeapi.ListPodSandboxStatsRequest{Filter: r.Filter})
	if err != nil {
		return err
	}
	return sendBatches(resp.Stats, func(b []*runtimeapi.PodSandboxStats) error {
		return st.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b})
	})
}

func (s *Server) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	resp, err := s.ListPodSandboxMetrics(st.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return err
	}
	return sendBatches(resp.PodMetrics, func(b []*runtimeapi.PodSandboxMetrics) error {
		return st.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: b})
	})
}

func (s *Server) StreamImages(r *runtimeapi.StreamImagesRequest, st grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(st.Context(), &runtimeapi.ListImagesRequest{Filter: r.Filter})
	if err != nil {
		return err
	}
	return sendBatches(resp.Images, func(b []*runtimeapi.Image) error {
		return st.Send(&runtimeapi.StreamImagesResponse{Images: b})
	})
}
