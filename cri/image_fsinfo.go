package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageFsInfo reports the space and inodes used by image layers and by the
// containers' writable layers, which kubelet's image GC and eviction read.
func (s *Server) ImageFsInfo(ctx context.Context, r *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	sn := s.images.Snapshots()
	layers, err := sn.LayersUsage()
	if err != nil {
		return nil, toStatus(err)
	}
	ctrs, err := sn.ContainersUsage()
	if err != nil {
		return nil, toStatus(err)
	}
	now := time.Now().UnixNano()
	fs := func(bytes, inodes uint64) *runtimeapi.FilesystemUsage {
		return &runtimeapi.FilesystemUsage{
			Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: sn.Root()},
			UsedBytes: &runtimeapi.UInt64Value{Value: bytes}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
		}
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{fs(layers.Bytes, layers.Inodes)},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{fs(ctrs.Bytes, ctrs.Inodes)},
	}, nil
}
