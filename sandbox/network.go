package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// NetworkFile is kept in a sandbox's directory from just before its CNI ADD
// until its DEL has succeeded: the network config and pod arguments that DEL
// must repeat. Whatever happens to berthd in between, the start-up sweep or
// the next stop finds it and finishes the teardown.
const NetworkFile = "network.json"

type attachment struct {
	Config json.RawMessage `json:"config"`
	Pod    cni.Pod         `json:"pod"`
}

// setupNetwork attaches a new pod to the current CNI network and returns its IPs.
func (s *Service) setupNetwork(ctx context.Context, rec store.Sandbox, r Request) ([]string, error) {
	n, err := s.net.Current()
	if r.Network != nil {
		n, err = cni.FromBytes(r.Network)
	}
	if err != nil {
		return nil, err
	}
	pod := cni.Pod{
		ID: rec.ID, Name: r.Name, Namespace: r.Namespace, UID: r.UID, NetNS: rec.Namespaces["net"],
		PortMappings: r.PortMappings, Bandwidth: r.Bandwidth,
	}
	if r.DNS != nil {
		pod.DNS = &cni.DNS{Servers: r.DNS.Servers, Searches: r.DNS.Searches, Options: r.DNS.Options}
	}
	b, err := json.Marshal(attachment{Config: n.Bytes(), Pod: pod})
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteSynced(filepath.Join(rec.Dir, NetworkFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("record network attachment: %w", err)
	}
	ips, err := s.net.Add(ctx, n, pod)
	if err != nil {
		// Undo what the plugins that ran did (leases, veth, rules).
		if derr := s.teardownNetwork(context.WithoutCancel(ctx), rec.Dir); derr != nil {
			s.log.Warn("cleaning up a failed CNI ADD", slog.String("sandbox", rec.ID), slog.Any("error", derr))
		}
		return nil, err
	}
	return ips, nil
}

// teardownNetwork runs CNI DEL for every attachment recorded in dir (the
// pod's network, and those it was attached to later), then forgets them.
// Running it again, or with the namespace gone, is harmless.
func (s *Service) teardownNetwork(ctx context.Context, dir string) error {
	extra, _ := filepath.Glob(filepath.Join(dir, extraNetworkPrefix+"*.json"))
	for _, file := range append(extra, filepath.Join(dir, NetworkFile)) {
		if err := s.teardownAttachment(ctx, dir, file); err != nil {
			return err
		}
	}
	return nil
}

// teardownAttachment runs CNI DEL for the attachment recorded in file.
func (s *Service) teardownAttachment(ctx context.Context, dir, file string) error {
	defer s.lockNetwork(dir)()
	n, pod, err := readAttachmentFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		// Cut short while written (by a berthd before writes were atomic):
		// the ADD, which comes after it, never ran.
		s.log.Warn("forgetting a half-written network record", slog.String("file", file), slog.Any("error", err))
		return os.Remove(file)
	}
	if err != nil {
		return err
	}
	if !isNetNS(pod.NetNS) {
		pod.NetNS = "" // gone: the plugins release what lives outside it
	}
	if err := s.net.Del(ctx, n, pod); err != nil {
		return err
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// extraNetworkPrefix names the records of networks a pod was attached to
// after it was made: network-eth1.json, ... Each is written before its ADD
// and removed after its DEL, as NetworkFile is.
const extraNetworkPrefix = "network-"

// Connect attaches a running pod to one more network, conflist, on
// interface ifname (eth1, ...), and returns its IPs there.
func (s *Service) Connect(ctx context.Context, id string, conflist []byte, ifname string) ([]string, error) {
	rec, err := s.db.Sandboxes.Get(id)
	if err != nil {
		return nil, err
	}
	if rec.Namespaces["net"] == "" || !strings.HasPrefix(ifname, "eth") || ifname == cni.IfName {
		return nil, fmt.Errorf("sandbox %s: no network namespace of its own, or interface %q: %w", id, ifname, errdefs.ErrInvalidArgument)
	}
	n, err := cni.FromBytes(conflist)
	if err != nil {
		return nil, err
	}
	pod := cni.Pod{ID: rec.ID, Name: rec.Name, Namespace: rec.Namespace, UID: rec.UID, NetNS: rec.Namespaces["net"], IfName: ifname}
	file := filepath.Join(rec.Dir, extraNetworkPrefix+ifname+".json")
	b, err := json.Marshal(attachment{Config: n.Bytes(), Pod: pod})
	if err != nil {
		return nil, err
	}
	unlock := s.lockNetwork(rec.Dir)
	if _, err := os.Stat(file); err == nil {
		unlock()
		return nil, fmt.Errorf("sandbox %s: %s is taken: %w", id, ifname, errdefs.ErrAlreadyExists)
	}
	if err := atomicfile.WriteSynced(file, b, 0o600); err != nil {
		unlock()
		return nil, fmt.Errorf("record network attachment: %w", err)
	}
	ips, err := s.net.Add(ctx, n, pod)
	unlock()
	if err != nil {
		if derr := s.teardownAttachment(context.WithoutCancel(ctx), rec.Dir, file); derr != nil {
			s.log.Warn("cleaning up a failed CNI ADD", slog.String("sandbox", id), slog.Any("error", derr))
		}
		return nil, err
	}
	return ips, nil
}

// Disconnect detaches a pod from the network it was connected to on ifname.
func (s *Service) Disconnect(ctx context.Context, id, ifname string) error {
	rec, err := s.db.Sandboxes.Get(id)
	if err != nil {
		return err
	}
	return s.teardownAttachment(ctx, rec.Dir, filepath.Join(rec.Dir, extraNetworkPrefix+ifname+".json"))
}

// checkNetwork asks the plugins whether a ready pod's networking is intact
// (nothing to ask once it is torn down).
func (s *Service) checkNetwork(ctx context.Context, dir string) error {
	defer s.lockNetwork(dir)()
	n, pod, err := readAttachment(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.net.Check(ctx, n, pod)
}

// lockNetwork serialises the plugin runs of one sandbox: the start-up
// checks run behind serving, beside the calls that tear pods down. It
// returns the unlock.
func (s *Service) lockNetwork(dir string) func() {
	m, _ := s.netLocks.LoadOrStore(dir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// readAttachment reads what setupNetwork recorded in dir.
func readAttachment(dir string) (*cni.Network, cni.Pod, error) {
	return readAttachmentFile(filepath.Join(dir, NetworkFile))
}

// readAttachmentFile reads an attachment's record.
func readAttachmentFile(file string) (*cni.Network, cni.Pod, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, cni.Pod{}, err
	}
	var a attachment
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, cni.Pod{}, fmt.Errorf("%s: %w", file, err)
	}
	n, err := cni.FromBytes(a.Config)
	if err != nil {
		return nil, cni.Pod{}, fmt.Errorf("%s: %w", file, err)
	}
	return n, a.Pod, nil
}

// NetworkReady says whether pods can be attached to a network, and why not.
func (s *Service) NetworkReady() error {
	_, err := s.net.Current()
	return err
}

// DefaultRange is the default network's IPv4 subnet and gateway (Docker's
// bridge network shows them), empty when its IPAM does not say.
func (s *Service) DefaultRange() (subnet, gateway string) {
	n, err := s.net.Current()
	if err != nil {
		return "", ""
	}
	return n.Range()
}

// SetPodCIDR gives the default network kubelet's pod CIDR.
func (s *Service) SetPodCIDR(cidr string) error { return s.net.SetDefaultSubnet(cidr) }

// hostResolvConf is the node's resolv.conf without loopback resolvers, which
// mean nothing inside a pod's own network namespace.
func hostResolvConf(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read host resolv.conf: %w", err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && ip.IsLoopback() {
				continue
			}
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), sc.Err()
}

// isNetNS says whether path is (a bind mount of) a namespace, not the empty
// file an unpinned namespace leaves.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return path != "" && unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
