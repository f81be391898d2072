package cri

import (
	"github.com/berth-runtime/berth/internal/store"
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

// batcher gathers items into messages of at most streamBatchBytes (one
// larger item alone), sending each as it fills.
type batcher[T proto.Message] struct {
	send  func([]T) error
	batch []T
	size  int
}

func (b *batcher[T]) add(it T) error {
	n := proto.Size(it)
	if len(b.batch) > 0 && b.size+n > streamBatchBytes {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.batch = append(b.batch, it)
	b.size += n
	return nil
}

// flush sends what is gathered; nothing when there is nothing.
func (b *batcher[T]) flush() error {
	if len(b.batch) == 0 {
		return nil
	}
	err := b.send(b.batch)
	b.batch, b.size = nil, 0
	return err
}

// sendBatches sends items in batches.
func sendBatches[T proto.Message](items []T, send func([]T) error) error {
	b := &batcher[T]{send: send}
	for _, it := range items {
		if err := b.add(it); err != nil {
			return err
		}
	}
	return b.flush()
}

// StreamPodSandboxes reads the records one at a time as it sends them.
func (s *Server) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	b := &batcher[*runtimeapi.PodSandbox]{send: func(b []*runtimeapi.PodSandbox) error {
		return st.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b})
	}}
	err := s.sandboxes.EachOwned("", func(rec store.Sandbox) error {
		if !sandboxMatches(rec, r.GetFilter()) {
			return nil
		}
		return b.add(criSandbox(rec))
	})
	if err != nil {
		return toStatus(err)
	}
	return b.flush()
}

// StreamContainers reads the records one at a time as it sends them: its
// memory does not grow with the node's containers, where a List answer
// holds them all twice (the records copied, the answer marshalled).
func (s *Server) StreamContainers(r *runtimeapi.StreamContainersRequest, st grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	b := &batcher[*runtimeapi.Container]{send: func(b []*runtimeapi.Container) error {
		return st.Send(&runtimeapi.StreamContainersResponse{Containers: b})
	}}
	err := s.containers.EachOwned("", func(rec store.Container) error {
		if !containerMatches(rec, r.GetFilter()) {
			return nil
		}
		return b.add(criContainer(rec))
	})
	if err != nil {
		return toStatus(err)
	}
	return b.flush()
}

// StreamContainerStats reads each container's usage as it goes, one record
// at a time.
func (s *Server) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, st grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	b := &batcher[*runtimeapi.ContainerStats]{send: func(b []*runtimeapi.ContainerStats) error {
		return st.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: b})
	}}
	err := s.containers.EachOwned("", func(rec store.Container) error {
		if !statsMatches(rec, r.GetFilter()) {
			return nil
		}
		u, err := s.containers.ListedStats(rec)
		if err != nil {
			return nil // removed meanwhile, as ListContainerStats skips it
		}
		return b.add(containerStats(rec, u))
	})
	if err != nil {
		return toStatus(err)
	}
	return b.flush()
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
