package buildkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"

	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/util/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/sandbox"
)

// podNetwork gives each RUN step (of --network=default) the network
// namespace of a pod of its own on the node's CNI network, as the classic
// builder's steps have: the same network, DNS and firewall as any container.
type podNetwork struct {
	containers *containers.Service
	log        *slog.Logger
}

func (p podNetwork) New(ctx context.Context, hostname string, _ network.NamespaceOptions) (network.Namespace, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "buildkit-" + hex.EncodeToString(rnd[:])
	pod, err := p.containers.RunPod(context.WithoutCancel(ctx), sandbox.Request{
		Name: name, Namespace: builder.Owner, UID: name, Owner: builder.Owner, Hostname: hostname,
	})
	if err != nil {
		return nil, fmt.Errorf("network of a RUN step: %w", err)
	}
	return &podNamespace{p: p, pod: pod.ID, path: pod.Namespaces["net"]}, nil
}

func (podNetwork) Close() error { return nil }

type podNamespace struct {
	p    podNetwork
	pod  string
	path string
}

// Set puts the step in the pod's network namespace.
func (n *podNamespace) Set(s *specs.Spec) error {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = n.path
			return nil
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: n.path})
	return nil
}

func (n *podNamespace) Close() error {
	if err := n.p.containers.RemovePod(context.Background(), n.pod); err != nil {
		n.p.log.Warn("buildkit: remove a RUN step's pod", slog.String("pod", n.pod), slog.Any("error", err))
		return err
	}
	return nil
}

func (n *podNamespace) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }
