package cri

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/sandbox"
)

// Server implements runtime.v1's RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	containers *containers.Service
	sandboxes  *sandbox.Service
	images     *images.Service
	streaming  *Streaming
	log        *slog.Logger
	version    string
	// statusInfo is Status' verbose info (config, node checks), when set.
	statusInfo func(context.Context) map[string]string
}

// SetStatusInfo gives verbose Status (crictl info) what to show beside the conditions.
func (s *Server) SetStatusInfo(f func(context.Context) map[string]string) { s.statusInfo = f }

// New returns a CRI server over the services.
func New(c *containers.Service, sb *sandbox.Service, img *images.Service, st *Streaming, log *slog.Logger, version string) *Server {
	return &Server{containers: c, sandboxes: sb, images: img, streaming: st, log: log, version: version}
}

// Register adds both services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// LogInterceptor logs every call at debug level with its duration, and
// failures at warn level: `--log-level debug` tells the story of a request.
func LogInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		attrs := []any{slog.String("method", info.FullMethod), slog.Duration("took", time.Since(start))}
		if r, ok := req.(interface{ GetContainerId() string }); ok && r.GetContainerId() != "" {
			attrs = append(attrs, slog.String("container", r.GetContainerId()))
		}
		if r, ok := req.(interface{ GetPodSandboxId() string }); ok && r.GetPodSandboxId() != "" {
			attrs = append(attrs, slog.String("sandbox", r.GetPodSandboxId()))
		}
		if err != nil {
			log.Warn("CRI call failed", append(attrs, slog.Any("error", err))...)
		} else {
			log.Debug("CRI call", attrs...)
		}
		return resp, err
	}
}
