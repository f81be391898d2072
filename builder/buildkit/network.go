package buildkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/util/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/sandbox"
)

// Pooled pods: a step that ends gives its pod back, and the next step
// (of any build) takes it rather than paying for a new pod and its CNI
// ADD and DEL. At most poolSize wait, for poolIdle at most.
const (
	poolSize = 4
	poolIdle = time.Minute
)

// podNetwork gives each RUN step (of --network=default) the network
// namespace of a Berth pod on the node's CNI network, as the classic
// builder's steps have: the same network, DNS and firewall as any
// container. The pods are BuildKit's network namespace pool.
type podNetwork struct {
	containers *containers.Service
	log        *slog.Logger

	mu    sync.Mutex
	idle  []*podNamespace // most recently returned last
	timer *time.Timer
}

func newPodNetwork(c *containers.Service, log *slog.Logger) *podNetwork {
	return &podNetwork{containers: c, log: log}
}

func (p *podNetwork) New(ctx context.Context, hostname string, _ network.NamespaceOptions) (network.Namespace, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		ns := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return ns, nil
	}
	p.mu.Unlock()
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

// put keeps a step's pod for the next step, or removes it when the pool is full.
func (p *podNetwork) put(ns *podNamespace) error {
	p.mu.Lock()
	if len(p.idle) < poolSize {
		ns.since = time.Now()
		p.idle = append(p.idle, ns)
		if p.timer == nil {
			p.timer = time.AfterFunc(poolIdle, p.reap)
		}
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	return p.remove(ns)
}

// reap removes the pods idle for poolIdle, and comes back while any wait.
func (p *podNetwork) reap() {
	p.mu.Lock()
	var old []*podNamespace
	keep := p.idle[:0]
	for _, ns := range p.idle {
		if time.Since(ns.since) >= poolIdle {
			old = append(old, ns)
		} else {
			keep = append(keep, ns)
		}
	}
	p.idle = keep
	p.timer = nil
	if len(p.idle) > 0 {
		// The oldest left goes when its own minute ends, not a minute on.
		p.timer = time.AfterFunc(poolIdle-time.Since(p.idle[0].since), p.reap)
	}
	p.mu.Unlock()
	for _, ns := range old {
		_ = p.remove(ns)
	}
}

func (p *podNetwork) remove(ns *podNamespace) error {
	if err := p.containers.RemovePod(context.Background(), ns.pod); err != nil {
		p.log.Warn("buildkit: remove a RUN step's pod", slog.String("pod", ns.pod), slog.Any("error", err))
		return err
	}
	return nil
}

// Close removes the pods waiting in the pool (BuildKit's shutdown).
func (p *podNetwork) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	for _, ns := range idle {
		_ = p.remove(ns)
	}
	return nil
}

type podNamespace struct {
	p     *podNetwork
	pod   string
	path  string
	since time.Time
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

// Close ends the step's use of the pod: back to the pool.
func (n *podNamespace) Close() error { return n.p.put(n) }

func (n *podNamespace) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }
