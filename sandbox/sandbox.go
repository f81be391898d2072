package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/ids"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// Service creates and destroys pod sandboxes.
type Service struct {
	db       *store.DB
	stateDir string // <state>/sandboxes
	// pauseBin is berth-runtime, whose pause mode holds a pod's shared PID namespace.
	pauseBin string
	// net attaches pods to the CNI network.
	net *cni.Manager
	// netLocks: see lockNetwork.
	netLocks sync.Map
	log      *slog.Logger
}

// New returns a sandbox service keeping its files under stateDir/sandboxes.
func New(db *store.DB, stateDir, pauseBin string, net *cni.Manager, log *slog.Logger) *Service {
	return &Service{db: db, stateDir: filepath.Join(stateDir, "sandboxes"), pauseBin: pauseBin, net: net, log: log}
}

// DNS is the pod's resolver configuration; nil means the host's.
type DNS struct {
	Servers, Searches, Options []string
}

// Request describes a sandbox to run.
type Request struct {
	Name, Namespace, UID string
	Attempt              uint32
	Labels, Annotations  map[string]string
	Hostname             string
	LogDirectory         string
	CgroupParent         string
	DNS                  *DNS
	// ExtraHosts are lines for /etc/hosts, "name:IP" (Docker's --add-host).
	ExtraHosts []string
	// HostNetwork shares the node's network and UTS namespaces; HostIPC its IPC namespace.
	HostNetwork, HostIPC bool
	// NoNetwork gives the pod a network namespace with loopback only, no
	// CNI network (Docker's --network none).
	NoNetwork bool
	// SharedPID gives the pod one PID namespace for its containers (CRI's
	// POD mode, the default; kubelet asks it for shareProcessNamespace).
	SharedPID bool
	// UserNS gives the pod a user namespace of its own; nil shares the node's.
	UserNS         *UserNS
	RuntimeHandler string
	Sysctls        map[string]string
	// Network, if set, is the CNI conflist the pod is attached to instead
	// of the current network (a Docker user-defined network).
	Network []byte
	// PortMappings are the pod's hostPorts; Bandwidth its traffic limits.
	PortMappings []cni.PortMapping
	Bandwidth    *cni.Bandwidth
	// Config is the front end's own record of the request (CRI protobuf).
	Config []byte
	// Owner is the front end the pod belongs to ("" the CRI, "docker").
	Owner string
	// BeforeReady, when set, is told of the pod once it is set up and
	// before anyone can see it (NRI's RunPodSandbox); an error fails it,
	// and the pod is cleaned up.
	BeforeReady func(context.Context, store.Sandbox) error
}

// Files of a sandbox's directory that containers bind.
const (
	HostsFile    = "hosts"
	ResolvFile   = "resolv.conf"
	HostnameFile = "hostname"
	ShmDir       = "shm"
)

// cgroupFile, in a sandbox's directory, names the pod cgroup berthd made.
const cgroupFile = "cgroup"

// shmSize is the pod's /dev/shm, Docker's and containerd's default.
const shmSize = "65536k"

// Run creates a sandbox: namespaces pinned, files written, record stored.
// On failure nothing is left behind.
func (s *Service) Run(ctx context.Context, r Request) (rec store.Sandbox, err error) {
	if r.Name == "" || r.UID == "" || r.Namespace == "" {
		return rec, fmt.Errorf("sandbox metadata needs name, uid and namespace: %w", errdefs.ErrInvalidArgument)
	}
	o, taken, err := s.db.Sandboxes.First(func(o store.Sandbox) bool {
		return o.Name == r.Name && o.Namespace == r.Namespace && o.UID == r.UID && o.Attempt == r.Attempt
	})
	if err != nil {
		return rec, err
	}
	if taken {
		return rec, fmt.Errorf("sandbox %s/%s (uid %s, attempt %d) is %s: %w", r.Namespace, r.Name, r.UID, r.Attempt, o.ID, errdefs.ErrAlreadyExists)
	}
	id := ids.New()
	dir := filepath.Join(s.stateDir, id)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return rec, fmt.Errorf("sandbox dir: %w", err)
	}
	rec = store.Sandbox{
		ID: id, Name: r.Name, Namespace: r.Namespace, UID: r.UID, Attempt: r.Attempt,
		Labels: r.Labels, Annotations: r.Annotations, Config: r.Config, RuntimeHandler: r.RuntimeHandler,
		State: store.SandboxReady, CreatedAt: time.Now().UTC(), Dir: dir, CgroupParent: r.CgroupParent,
		Hostname: r.Hostname, LogDirectory: r.LogDirectory, Sysctls: r.Sysctls, Owner: r.Owner,
	}
	defer func() {
		if err != nil {
			if cerr := s.cleanup(context.WithoutCancel(ctx), rec); cerr != nil {
				s.log.Warn("cleaning up a failed sandbox", slog.String("sandbox", id), slog.Any("error", cerr))
			}
		}
	}()
	if rec.Hostname == "" {
		if rec.Hostname, err = os.Hostname(); err != nil {
			return rec, err
		}
		if !r.HostNetwork {
			rec.Hostname = r.Name
		}
	}
	if len(rec.Hostname) > 63 {
		// A pod name may be longer than a hostname may (kubelet truncates the same way).
		rec.Hostname = strings.TrimRight(rec.Hostname[:63], "-.")
	}
	var kinds []string
	if !r.HostNetwork {
		kinds = append(kinds, "net", "uts")
	}
	if !r.HostIPC {
		kinds = append(kinds, "ipc")
	}
	switch {
	case r.UserNS != nil:
		if r.HostNetwork || r.HostIPC {
			return rec, fmt.Errorf("sandbox %s: a pod with its own user namespace cannot share the node's network or IPC namespace: %w", id, errdefs.ErrInvalidArgument)
		}
		rec.UIDMappings, rec.GIDMappings = r.UserNS.UIDs, r.UserNS.GIDs
		rec.Namespaces, rec.PausePid, rec.PauseStart, err = pinWithUserNS(s.pauseBin, dir, kinds, rec.Hostname, r.UserNS, r.SharedPID)
		if err != nil {
			return rec, fmt.Errorf("sandbox %s: %w", id, err)
		}
	case len(kinds) > 0:
		if rec.Namespaces, err = pinNamespaces(filepath.Join(dir, "ns"), kinds, rec.Hostname); err != nil {
			return rec, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}
	if !r.HostNetwork && !r.NoNetwork {
		ips, err := s.setupNetwork(ctx, rec, r)
		if err != nil {
			return rec, fmt.Errorf("sandbox %s: %w", id, err)
		}
		rec.IP, rec.AdditionalIPs = ips[0], ips[1:]
	}
	if err := s.writeFiles(rec, r.DNS, r.ExtraHosts); err != nil {
		return rec, fmt.Errorf("sandbox %s: %w", id, err)
	}
	if rec.CgroupParent != "" {
		// Named first, for the start-up sweep, should berthd die before the record is written.
		if err := atomicfile.WriteSynced(filepath.Join(dir, cgroupFile), []byte(rec.CgroupParent), 0o600); err != nil {
			return rec, fmt.Errorf("sandbox %s: %w", id, err)
		}
		if err := linux.CreateCgroup(rec.CgroupParent); err != nil {
			return rec, fmt.Errorf("sandbox %s: pod cgroup: %w", id, err)
		}
	}
	if r.SharedPID && r.UserNS == nil {
		if rec.PausePid, rec.PauseStart, err = startPause(s.pauseBin, dir, rec.Namespaces); err != nil {
			return rec, fmt.Errorf("sandbox %s: %w", id, err)
		}
		if rec.Namespaces == nil {
			rec.Namespaces = map[string]string{}
		}
		rec.Namespaces["pid"] = fmt.Sprintf("/proc/%d/ns/pid", rec.PausePid)
	}
	if !r.HostIPC {
		shm := filepath.Join(dir, ShmDir)
		if err := os.Mkdir(shm, 0o755); err != nil {
			return rec, err
		}
		if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+shmSize); err != nil {
			return rec, fmt.Errorf("sandbox %s: mount shm: %w", id, err)
		}
	}
	if r.BeforeReady != nil {
		if err := r.BeforeReady(ctx, rec); err != nil {
			return rec, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}
	if err := s.db.Sandboxes.Create(id, rec); err != nil {
		return rec, err
	}
	s.log.Info("sandbox ready", slog.String("sandbox", id), slog.String("pod", r.Namespace+"/"+r.Name))
	return rec, nil
}

func (s *Service) writeFiles(rec store.Sandbox, dns *DNS, extraHosts []string) error {
	hosts := hostsContent(rec, extraHosts)
	var resolv []byte
	if dns != nil && (len(dns.Servers)+len(dns.Searches)+len(dns.Options)) > 0 {
		var b strings.Builder
		for _, sv := range dns.Servers {
			b.WriteString("nameserver " + sv + "\n")
		}
		if len(dns.Searches) > 0 {
			b.WriteString("search " + strings.Join(dns.Searches, " ") + "\n")
		}
		if len(dns.Options) > 0 {
			b.WriteString("options " + strings.Join(dns.Options, " ") + "\n")
		}
		resolv = []byte(b.String())
	} else {
		var err error
		if resolv, err = hostResolvConf("/etc/resolv.conf"); err != nil {
			return err
		}
	}
	for name, data := range map[string][]byte{
		HostsFile: []byte(hosts), ResolvFile: resolv, HostnameFile: []byte(rec.Hostname + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(rec.Dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// hostsContent is a pod's /etc/hosts: localhost, the pod's own address,
// then extra ("name:IP" or "name=IP"; several names may share an IP, as
// "name alias:IP").
func hostsContent(rec store.Sandbox, extra []string) string {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if rec.IP != "" {
		hosts += rec.IP + "\t" + rec.Hostname + "\n"
	}
	for _, h := range extra {
		// "name:IP" (an IPv6 address has colons of its own) or "name=IP".
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, _ = strings.Cut(h, ":")
		}
		hosts += ip + "\t" + name + "\n"
	}
	return hosts
}

// WriteHosts rewrites pod id's /etc/hosts with extra after its own lines
// (peers on a Docker network, by name). The file is written in place:
// containers hold it through a bind mount of its inode.
func (s *Service) WriteHosts(id string, extra []string) error {
	rec, err := s.db.Sandboxes.Get(id)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(rec.Dir, HostsFile), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sandbox %s: hosts: %w", id, err)
	}
	_, err = f.WriteString(hostsContent(rec, extra))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get returns a sandbox record.
func (s *Service) Get(id string) (store.Sandbox, error) { return s.db.Sandboxes.Get(id) }

// List returns every sandbox.
func (s *Service) List() ([]store.Sandbox, error) { return s.db.Sandboxes.List() }

// EachOwned calls fn with each pod of one front end, one at a time (the
// streaming lists).
func (s *Service) EachOwned(owner string, fn func(store.Sandbox) error) error {
	return s.db.Sandboxes.Each(func(r store.Sandbox) error {
		if r.Owner != owner {
			return nil
		}
		return fn(r)
	})
}

// ListOwned returns the sandboxes of one front end (see Request.Owner).
func (s *Service) ListOwned(owner string) ([]store.Sandbox, error) {
	return s.db.Sandboxes.Filter(func(r store.Sandbox) bool { return r.Owner == owner })
}

// Stop marks the sandbox not ready and releases its namespaces and shm: after
// Stop no process can be in the pod (the caller stopped its containers).
func (s *Service) Stop(ctx context.Context, id string) error {
	rec, err := s.db.Sandboxes.Get(id)
	if err != nil {
		return err
	}
	// Not ready first: a stop cut short must never leave a record that says
	// ready over a torn-down network. The next stop, or the start-up
	// recovery, finishes what this one began.
	if rec.State == store.SandboxReady {
		if _, err := s.db.Sandboxes.Update(id, func(r *store.Sandbox) error {
			r.State = store.SandboxNotReady
			return nil
		}); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", id, err)
		}
	}
	if err := s.release(ctx, rec); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	return nil
}

// release detaches the pod from the network, unpins its namespaces and
// unmounts shm; doing it twice is harmless. The network goes first, while
// its namespace still holds the pod's end of the veth.
func (s *Service) release(ctx context.Context, rec store.Sandbox) error {
	if err := s.teardownNetwork(ctx, rec.Dir); err != nil {
		// Keep the namespace: the next stop or remove retries the DEL in it.
		return err
	}
	var errs []error
	stopPause(rec.PausePid, rec.PauseStart)
	pinned := map[string]string{}
	for k, p := range rec.Namespaces {
		if k != "pid" { // the pause's, not a pinned file
			pinned[k] = p
		}
	}
	if err := unpinNamespaces(pinned); err != nil {
		errs = append(errs, err)
	}
	shm := filepath.Join(rec.Dir, ShmDir)
	if err := unix.Unmount(shm, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", shm, err))
	}
	return errors.Join(errs...)
}

func (s *Service) cleanup(ctx context.Context, rec store.Sandbox) error {
	if err := s.release(ctx, rec); err != nil {
		return err
	}
	if rec.CgroupParent != "" {
		// The pod's cgroup is ours when we made it; kubelet, which may have
		// made it first, tolerates finding it gone.
		if err := linux.RemoveCgroup(rec.CgroupParent); err != nil {
			s.log.Warn("pod cgroup not removed", slog.String("sandbox", rec.ID), slog.Any("error", err))
		}
	}
	s.netLocks.Delete(rec.Dir)
	return os.RemoveAll(rec.Dir)
}

// Remove deletes a stopped sandbox (stopping it if needed) and its files.
// Removing a missing sandbox is not an error.
func (s *Service) Remove(ctx context.Context, id string) error {
	rec, err := s.db.Sandboxes.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.cleanup(ctx, rec); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	return s.db.Sandboxes.Delete(id)
}
