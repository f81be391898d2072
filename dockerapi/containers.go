package dockerapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/sandbox"
)

func (s *Server) routeContainers() {
	s.mux.HandleFunc("POST /containers/create", s.createContainer)
	s.mux.HandleFunc("GET /containers/json", s.listContainers)
	s.mux.HandleFunc("GET /containers/{id}/json", s.inspectContainer)
	s.mux.HandleFunc("POST /containers/{id}/start", s.startContainer)
	s.mux.HandleFunc("POST /containers/{id}/stop", s.stopContainer)
	s.mux.HandleFunc("POST /containers/{id}/restart", s.restartContainer)
	s.mux.HandleFunc("POST /containers/{id}/kill", s.killContainer)
	s.mux.HandleFunc("POST /containers/{id}/pause", s.pauseContainer)
	s.mux.HandleFunc("POST /containers/{id}/unpause", s.unpauseContainer)
	s.mux.HandleFunc("POST /containers/{id}/wait", s.waitContainer)
	s.mux.HandleFunc("DELETE /containers/{id}", s.removeContainer)
	s.mux.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	s.mux.HandleFunc("POST /containers/{id}/attach", s.attachContainer)
	s.mux.HandleFunc("POST /containers/{id}/resize", s.resizeContainer)
	s.mux.HandleFunc("POST /containers/{id}/rename", s.renameContainer)
	s.mux.HandleFunc("POST /containers/{id}/update", s.updateContainer)
	s.mux.HandleFunc("POST /containers/prune", s.pruneContainers)
}

// createBody is the part of Docker's container create request Berth reads.
// The record keeps the request whole (inspect shows what the client sent).
type createBody struct {
	Image       string
	Cmd         []string
	Entrypoint  []string
	Env         []string
	WorkingDir  string
	User        string
	Labels      map[string]string
	Hostname    string
	Tty         bool
	OpenStdin   bool
	StdinOnce   bool
	StopSignal  string
	StopTimeout *int
	// Volumes are anonymous volumes' paths (`-v /path`), beside the image's.
	Volumes          map[string]struct{}
	NetworkingConfig struct {
		EndpointsConfig map[string]struct{ Aliases []string }
	}
	HostConfig struct {
		Binds          []string
		Privileged     bool
		ReadonlyRootfs bool
		Memory         int64
		NanoCpus       int64
		PidsLimit      *int64
		CapAdd         []string
		CapDrop        []string
		AutoRemove     bool
		RestartPolicy  struct {
			Name              string
			MaximumRetryCount int
		}
		NetworkMode string
		// PortBindings: "80/tcp" → [{HostIp, HostPort}].
		PortBindings map[string][]struct{ HostIp, HostPort string }
		// Tmpfs: container path → options ("size=64m,mode=1777").
		Tmpfs   map[string]string
		Ulimits []struct {
			Name       string
			Soft, Hard int64
		}
		Sysctls                    map[string]string
		ExtraHosts                 []string
		Dns, DnsSearch, DnsOptions []string
		SecurityOpt                []string
		Mounts                     []mountBody
		Init                       *bool
		GroupAdd                   []string
		ConsoleSize                *[2]uint // rows, columns of the client's terminal
	}
}

// mountBody is one --mount.
type mountBody struct {
	Type, Source, Target string
	ReadOnly             bool
	TmpfsOptions         *struct {
		SizeBytes int64
		Mode      uint32
	}
}

// portMappings turns `-p` into the pod's hostPorts (CNI portmap).
func portMappings(b map[string][]struct{ HostIp, HostPort string }) ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	for spec, binds := range b {
		port, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		cp, err := strconv.Atoi(port)
		if err != nil || cp <= 0 || cp > 65535 {
			return nil, fmt.Errorf("invalid port %q: %w", spec, errdefs.ErrInvalidArgument)
		}
		for _, hb := range binds {
			hp, err := strconv.Atoi(hb.HostPort)
			if err != nil || hp <= 0 || hp > 65535 {
				return nil, fmt.Errorf("invalid host port %q for %s (a host port must be given): %w", hb.HostPort, spec, errdefs.ErrInvalidArgument)
			}
			out = append(out, cni.PortMapping{HostPort: int32(hp), ContainerPort: int32(cp), HostIP: hb.HostIp, Protocol: proto})
		}
	}
	return out, nil
}

// publishedPorts are `docker ps`'s Ports: each -p binding.
func publishedPorts(b createBody) []map[string]any {
	out := []map[string]any{}
	for spec, binds := range b.HostConfig.PortBindings {
		port, proto, _ := strings.Cut(spec, "/")
		cp, _ := strconv.Atoi(port)
		for _, hb := range binds {
			hp, _ := strconv.Atoi(hb.HostPort)
			out = append(out, map[string]any{"IP": cmp.Or(hb.HostIp, "0.0.0.0"), "PrivatePort": cp, "PublicPort": hp, "Type": cmp.Or(proto, "tcp")})
		}
	}
	return out
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Annotations Berth keeps on a Docker container's record.
const (
	annotationAutoRemove = "io.berth.docker.autoremove"
	annotationCmd        = "io.berth.docker.cmd"
	annotationStdin      = "io.berth.docker.stdin"
	// annotationAnonVolumes lists the anonymous volumes made for the
	// container ("name:/path,..."), removed with it by rm -v and --rm.
	annotationAnonVolumes = "io.berth.docker.anonymous-volumes"
)

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxCreateBody+1))
	if err != nil || len(raw) > maxCreateBody {
		writeError(w, fmt.Errorf("the create request is unreadable or over %d bytes: %w", maxCreateBody, errdefs.ErrInvalidArgument))
		return
	}
	var b createBody
	if err := json.Unmarshal(raw, &b); err != nil {
		writeError(w, fmt.Errorf("malformed JSON in the request body: %v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = randomName()
	}
	if !validName.MatchString(name) {
		writeError(w, fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument))
		return
	}
	name = strings.TrimPrefix(name, "/")
	if b.Image == "" {
		writeError(w, fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument))
		return
	}
	if c, err := s.lookup(name); err == nil {
		writeError(w, fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", name, c.ID, errdefs.ErrAlreadyExists))
		return
	}
	if _, err := s.images.Resolve(b.Image); err != nil {
		writeError(w, fmt.Errorf("No such image: %s: %w", b.Image, errdefs.ErrNotFound))
		return
	}
	cc, err := containerConfig(b, s.ensureVolume)
	if err != nil {
		writeError(w, err)
		return
	}
	if b.HostConfig.Init != nil && *b.HostConfig.Init {
		if err := s.withInit(b, &cc); err != nil {
			writeError(w, err)
			return
		}
	}
	anon, err := s.anonymousVolumes(b, &cc)
	if err != nil {
		writeError(w, err)
		return
	}
	network, err := s.findNetwork(networkOf(b))
	if err != nil {
		writeError(w, err)
		return
	}
	switch p := b.HostConfig.RestartPolicy; {
	case p.Name != "" && p.Name != "no" && p.Name != "always" && p.Name != "on-failure" && p.Name != "unless-stopped":
		writeError(w, fmt.Errorf("invalid restart policy %q: want no, always, on-failure or unless-stopped: %w", p.Name, errdefs.ErrInvalidArgument))
		return
	case p.Name != "" && p.Name != "no" && b.HostConfig.AutoRemove:
		writeError(w, fmt.Errorf("conflicting options: cannot specify both --restart and --rm: %w", errdefs.ErrInvalidArgument))
		return
	}
	ports, err := portMappings(b.HostConfig.PortBindings)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := checkHosts(b.HostConfig.ExtraHosts, b.HostConfig.Dns); err != nil {
		writeError(w, err)
		return
	}
	if b.StopSignal != "" {
		if _, err := linux.ParseSignal(b.StopSignal); err != nil {
			writeError(w, fmt.Errorf("invalid stop signal %q: %w", b.StopSignal, errdefs.ErrInvalidArgument))
			return
		}
	}
	var dns *sandbox.DNS
	if hc := b.HostConfig; len(hc.Dns)+len(hc.DnsSearch)+len(hc.DnsOptions) > 0 {
		dns = &sandbox.DNS{Servers: hc.Dns, Searches: hc.DnsSearch, Options: hc.DnsOptions}
	}
	ctx := context.WithoutCancel(r.Context()) // a client that goes away must not leave half a container
	made := false
	defer func() {
		if !made {
			s.removeVolumes(anon)
		}
	}()
	pod, err := s.containers.RunPod(ctx, sandbox.Request{
		Name: name, Namespace: Owner, UID: name, Hostname: b.Hostname, Owner: Owner,
		LogDirectory: filepath.Join(s.logDir, name), HostNetwork: network.Name == "host",
		NoNetwork: network.Name == "none", PortMappings: ports, DNS: dns, ExtraHosts: b.HostConfig.ExtraHosts,
		Network: network.Conflist,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	ann := map[string]string{annotationCmd: strings.Join(append(append([]string{}, b.Entrypoint...), b.Cmd...), " ")}
	if b.HostConfig.AutoRemove {
		ann[annotationAutoRemove] = "true"
	}
	if b.OpenStdin {
		ann[annotationStdin] = "true"
	}
	if len(anon) > 0 {
		ann[annotationAnonVolumes] = strings.Join(anon, ",")
	}
	rec, err := s.containers.Create(ctx, containers.CreateRequest{
		SandboxID: pod.ID, Name: name, Labels: b.Labels, Annotations: ann, Image: b.Image, LogPath: "container.log",
		Container: cc, Stdin: b.OpenStdin, StdinOnce: b.OpenStdin && b.StdinOnce, Config: raw, StopSignal: b.StopSignal,
	})
	if err != nil {
		_ = s.containers.RemovePod(ctx, pod.ID)
		writeError(w, err)
		return
	}
	made = true
	s.syncHosts(network) // its peers learn its name, and it theirs
	writeJSON(w, http.StatusCreated, map[string]any{"Id": rec.ID, "Warnings": []string{}})
}

// withInit is --init: the container's command runs under docker-init,
// bound read-only at /sbin/docker-init, which reaps and forwards signals.
func (s *Server) withInit(b createBody, c *oci.ContainerConfig) error {
	if s.initBin == "" {
		return fmt.Errorf("--init: no init binary is configured: %w", errdefs.ErrUnimplemented)
	}
	var img ocispec.ImageConfig
	if rec, err := s.images.Resolve(b.Image); err == nil {
		if cfg, err := images.Config(rec); err == nil {
			img = cfg.Config
		}
	}
	args := slices.Concat(b.Entrypoint, b.Cmd)
	switch {
	case len(b.Entrypoint) == 0 && len(b.Cmd) == 0:
		args = slices.Concat(img.Entrypoint, img.Cmd)
	case len(b.Entrypoint) == 0:
		args = slices.Concat(img.Entrypoint, b.Cmd)
	}
	if len(args) == 0 {
		return fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	c.Command, c.Args = append([]string{"/sbin/docker-init", "--"}, args...), nil
	c.Mounts = append(c.Mounts, oci.Mount{ContainerPath: "/sbin/docker-init", HostPath: s.initBin, Readonly: true, Propagation: "private"})
	return nil
}

// maxCreateBody bounds a create request (dockerd reads any size; a few
// megabytes hold any real one, seccomp profiles included).
const maxCreateBody = 8 << 20

// checkHosts refuses --add-host entries and --dns servers that are not
// "name:IP" and IPs, as dockerd does, before anything is made.
func checkHosts(extra, dns []string) error {
	for _, h := range extra {
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, ok = strings.Cut(h, ":")
		}
		if !ok || name == "" || net.ParseIP(ip) == nil {
			return fmt.Errorf("invalid IP address in add-host: %q: %w", h, errdefs.ErrInvalidArgument)
		}
	}
	for _, d := range dns {
		if net.ParseIP(d) == nil {
			return fmt.Errorf("%s is not an ip address: %w", d, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// containerConfig translates Docker's request into Berth's terms; volume
// gives the directory of a named volume (making it).
func containerConfig(b createBody, volume func(name string) (string, error)) (oci.ContainerConfig, error) {
	c := oci.ContainerConfig{
		Command: b.Entrypoint, Args: b.Cmd, Env: b.Env, WorkingDir: b.WorkingDir, Hostname: b.Hostname, Tty: b.Tty,
		ConsoleSize: b.HostConfig.ConsoleSize,
		Privileged:  b.HostConfig.Privileged, ReadonlyRootfs: b.HostConfig.ReadonlyRootfs,
		AddCapabilities: b.HostConfig.CapAdd, DropCapabilities: b.HostConfig.CapDrop, Seccomp: "runtime/default",
	}
	if b.HostConfig.Privileged {
		c.Seccomp = "unconfined"
	}
	if u := b.User; u != "" {
		user, group, hasGroup := strings.Cut(u, ":")
		if n, err := strconv.ParseInt(user, 10, 64); err == nil {
			c.RunAsUser = &n
		} else {
			c.Username = user
		}
		if hasGroup {
			g, err := strconv.ParseInt(group, 10, 64)
			if err != nil {
				return c, fmt.Errorf("user %q: only a numeric group is supported: %w", u, errdefs.ErrInvalidArgument)
			}
			c.RunAsGroup = &g
		}
	}
	c.Resources.MemoryLimit = b.HostConfig.Memory
	if n := b.HostConfig.NanoCpus; n > 0 {
		c.Resources.CPUPeriod = 100000
		c.Resources.CPUQuota = n * 100000 / 1e9
	}
	if p := b.HostConfig.PidsLimit; p != nil && *p > 0 {
		c.Resources.PidsLimit = *p
	}
	for _, bind := range b.HostConfig.Binds {
		parts := strings.Split(bind, ":")
		if len(parts) < 2 || parts[0] == "" || !filepath.IsAbs(parts[1]) {
			return c, fmt.Errorf("invalid bind %q: want /host/path:/container/path[:ro] or volume:/container/path[:ro]: %w", bind, errdefs.ErrInvalidArgument)
		}
		m := oci.Mount{HostPath: parts[0], ContainerPath: parts[1], Propagation: "private"}
		if !filepath.IsAbs(parts[0]) {
			p, err := volume(parts[0])
			if err != nil {
				return c, err
			}
			m.HostPath = p
		}
		if len(parts) > 2 {
			for _, o := range strings.Split(parts[2], ",") {
				m.Readonly = m.Readonly || o == "ro"
			}
		}
		c.Mounts = append(c.Mounts, m)
	}
	for _, mb := range b.HostConfig.Mounts {
		m, err := mountConfig(mb, volume)
		if err != nil {
			return c, err
		}
		c.Mounts = append(c.Mounts, m)
	}
	for dst, opts := range b.HostConfig.Tmpfs {
		if !filepath.IsAbs(dst) {
			return c, fmt.Errorf("invalid tmpfs %q: the path must be absolute: %w", dst, errdefs.ErrInvalidArgument)
		}
		m := oci.Mount{ContainerPath: dst, Tmpfs: true}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "ro":
				m.Readonly = true
			case "rw":
			default:
				m.TmpfsOptions = append(m.TmpfsOptions, o)
			}
		}
		c.Mounts = append(c.Mounts, m)
	}
	for _, u := range b.HostConfig.Ulimits {
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		if !linux.KnownRlimit(name) || u.Soft < 0 || u.Hard < 0 || u.Soft > u.Hard {
			return c, fmt.Errorf("invalid ulimit %s=%d:%d: %w", u.Name, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		}
		c.Rlimits = append(c.Rlimits, specs.POSIXRlimit{Type: name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	c.Sysctls = b.HostConfig.Sysctls
	for _, g := range b.HostConfig.GroupAdd {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return c, fmt.Errorf("group-add %q: only numeric groups are supported: %w", g, errdefs.ErrInvalidArgument)
		}
		c.SupplementalGroups = append(c.SupplementalGroups, n)
	}
	for _, opt := range b.HostConfig.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			k, v, _ = strings.Cut(opt, ":") // the old form, "seccomp:unconfined"
		}
		switch {
		case k == "seccomp" && v == "unconfined":
			c.Seccomp = "unconfined"
		case k == "seccomp":
			c.Seccomp, c.SeccompProfile = "inline", []byte(v) // the CLI sends the file's content
		case k == "no-new-privileges" && (v == "" || v == "true"):
			c.NoNewPrivileges = true
		case k == "no-new-privileges" && v == "false":
		case k == "apparmor" || k == "label":
			// Neither AppArmor nor SELinux is in this kernel's set-up; accepted, as dockerd does without them.
		default:
			return c, fmt.Errorf("invalid --security-opt %q: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

// mountConfig translates one --mount (bind, volume or tmpfs).
func mountConfig(mb mountBody, volume func(name string) (string, error)) (oci.Mount, error) {
	m := oci.Mount{ContainerPath: mb.Target, HostPath: mb.Source, Readonly: mb.ReadOnly, Propagation: "private"}
	if !filepath.IsAbs(mb.Target) {
		return m, fmt.Errorf("invalid mount target %q: must be an absolute path: %w", mb.Target, errdefs.ErrInvalidArgument)
	}
	switch mb.Type {
	case "bind":
		if !filepath.IsAbs(mb.Source) {
			return m, fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", mb.Source, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(mb.Source); err != nil {
			return m, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", mb.Source, errdefs.ErrInvalidArgument)
		}
	case "volume", "":
		name := mb.Source
		if name == "" {
			name = randomID() // an anonymous volume
		}
		p, err := volume(name)
		if err != nil {
			return m, err
		}
		m.HostPath = p
	case "tmpfs":
		m.Tmpfs, m.HostPath = true, ""
		if o := mb.TmpfsOptions; o != nil {
			if o.SizeBytes > 0 {
				m.TmpfsOptions = append(m.TmpfsOptions, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				m.TmpfsOptions = append(m.TmpfsOptions, fmt.Sprintf("mode=%o", o.Mode))
			}
		}
	default:
		return m, fmt.Errorf("mount type %q is not supported (bind, volume, tmpfs): %w", mb.Type, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// lookup finds a Docker container by name (with or without its "/"), full
// ID or unique ID prefix.
func (s *Server) lookup(idOrName string) (store.Container, error) {
	all, err := s.containers.ListOwned(Owner)
	if err != nil {
		return store.Container{}, err
	}
	name := strings.TrimPrefix(idOrName, "/")
	var match []store.Container
	for _, c := range all {
		if c.ID == idOrName || c.Name == name {
			return c, nil
		}
		if strings.HasPrefix(c.ID, idOrName) {
			match = append(match, c)
		}
	}
	if len(match) == 1 && idOrName != "" {
		return match[0], nil
	}
	return store.Container{}, fmt.Errorf("No such container: %s: %w", idOrName, errdefs.ErrNotFound)
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State == store.ContainerRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	s.stops.clear(c.ID)
	start := s.containers.Start
	if c.State != store.ContainerCreated {
		start = s.containers.Restart // an exited container runs again in place
	}
	if err := start(ctx, c.ID); err != nil {
		writeError(w, err)
		return
	}
	if c.Annotations[annotationAutoRemove] == "true" {
		go s.autoRemove(c)
	}
	w.WriteHeader(http.StatusNoContent)
}

// autoRemove is `docker run --rm`: the pod goes once its container exits;
// its exit code stays for the client waiting on the removal.
func (s *Server) autoRemove(c store.Container) {
	rec, gone, _ := s.waitFor(context.Background(), c.ID, func(rec store.Container, gone bool) bool {
		return gone || rec.State == store.ContainerExited
	})
	if gone {
		return
	}
	removed := s.exits.put(c.ID, rec.ExitCode)
	defer removed()
	if err := s.remove(context.Background(), c); err != nil {
		s.log.Warn("docker --rm: remove", "container", c.ID, "error", err)
		return
	}
	s.removeVolumes(anonymousOf(c)) // --rm takes the anonymous volumes too, as dockerd's does
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State != store.ContainerRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if err := s.stop(r, c); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stop stops c as the user asked: its restart policy leaves it stopped.
func (s *Server) stop(r *http.Request, c store.Container) error {
	timeout := 10 * time.Second
	var b createBody
	if json.Unmarshal(c.Config, &b) == nil && b.StopTimeout != nil && *b.StopTimeout >= 0 {
		timeout = time.Duration(*b.StopTimeout) * time.Second // --stop-timeout
	}
	if t, err := strconv.Atoi(r.URL.Query().Get("t")); err == nil && t >= 0 {
		timeout = time.Duration(t) * time.Second
	}
	s.stops.mark(c.ID)
	return s.containers.Stop(context.WithoutCancel(r.Context()), c.ID, timeout)
}

// restartContainer is `docker restart`: stop (if running), then start again.
func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State == store.ContainerRunning {
		if err := s.stop(r, c); err != nil {
			writeError(w, err)
			return
		}
	}
	s.stops.clear(c.ID)
	start := s.containers.Restart
	if c.State == store.ContainerCreated {
		start = s.containers.Start
	}
	if err := start(context.WithoutCancel(r.Context()), c.ID); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// killContainer is `docker kill`: SIGKILL unless a signal is named.
func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	sig := syscall.SIGKILL
	if v := r.URL.Query().Get("signal"); v != "" {
		n, err := linux.ParseSignal(v)
		if err != nil {
			writeError(w, fmt.Errorf("invalid signal: %s: %w", v, errdefs.ErrInvalidArgument))
			return
		}
		sig = n
	}
	if c.State != store.ContainerRunning {
		writeError(w, fmt.Errorf("Container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition))
		return
	}
	s.stops.mark(c.ID)
	if err := s.containers.Kill(context.WithoutCancel(r.Context()), c.ID, sig); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pauseContainer and unpauseContainer are `docker pause` and `docker unpause`.
func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) {
	s.withContainer(w, r, s.containers.Pause)
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) {
	s.withContainer(w, r, s.containers.Resume)
}

func (s *Server) withContainer(w http.ResponseWriter, r *http.Request, f func(context.Context, string) error) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := f(context.WithoutCancel(r.Context()), c.ID); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitContainer answers once the container has exited ("removed": once it
// is gone too). The status line goes out at once: the CLI starts waiting
// before it starts the container.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	removed := r.URL.Query().Get("condition") == "removed"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	rec, gone, err := s.waitFor(r.Context(), c.ID, func(rec store.Container, gone bool) bool {
		return gone || rec.State == store.ContainerExited && !removed
	})
	if err != nil {
		return // the client went away
	}
	code := rec.ExitCode
	if gone {
		code, _ = s.exits.get(r.Context(), c.ID)
	}
	fmt.Fprintf(w, "{\"StatusCode\":%d,\"Error\":null}\n", code)
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State == store.ContainerRunning && !boolParam(r, "force") {
		writeError(w, fmt.Errorf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove: %w", c.Name, errdefs.ErrFailedPrecondition))
		return
	}
	if err := s.remove(context.WithoutCancel(r.Context()), c); err != nil {
		writeError(w, err)
		return
	}
	if boolParam(r, "v") {
		s.removeVolumes(anonymousOf(c))
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove removes c's pod and its log, as `docker rm` does.
func (s *Server) remove(ctx context.Context, c store.Container) error {
	s.stops.mark(c.ID) // no restart policy brings it back meanwhile
	if err := s.containers.RemovePod(ctx, c.SandboxID); err != nil {
		return err
	}
	s.stops.clear(c.ID)
	var b createBody
	_ = json.Unmarshal(c.Config, &b)
	nets := s.networksOf(c, b) // the pod's removal detached it from all of them
	_ = s.saveAttachments(c.ID, nil)
	for _, n := range nets {
		s.syncHosts(n) // its peers forget it
	}
	// The pod's log directory, named when it was made: a rename since does not move it.
	if dir := filepath.Dir(c.LogPath); filepath.Dir(dir) == s.logDir {
		return os.RemoveAll(dir)
	}
	return nil
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	all, err := s.containers.ListOwned(Owner)
	if err != nil {
		writeError(w, err)
		return
	}
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	networks := filters["network"] // matched on the request, not the record
	delete(filters, "network")
	healthFilter := filters["health"] // matched on the probes' state
	delete(filters, "health")
	out := []map[string]any{}
	for _, c := range all {
		if c.State != store.ContainerRunning && !boolParam(r, "all") && len(filters["status"]) == 0 {
			continue
		}
		var b createBody
		_ = json.Unmarshal(c.Config, &b)
		if !matchFilters(c, filters) || len(networks) > 0 && !slices.Contains(networks, networkOf(b)) ||
			len(healthFilter) > 0 && !slices.Contains(healthFilter, s.healthStatus(c.ID)) {
			continue
		}
		out = append(out, map[string]any{
			"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": c.ImageRef, "ImageID": c.ImageID,
			"Command": c.Annotations[annotationCmd], "Created": c.CreatedAt.Unix(), "State": dockerState(c),
			"Status": s.statusWithHealth(c), "Labels": nonNilMap(c.Labels), "Ports": publishedPorts(b), "Mounts": []any{},
			"HostConfig": map[string]string{"NetworkMode": networkOf(b)},
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	ip := ""
	if sb, err := s.sandboxes.Get(c.SandboxID); err == nil {
		ip = sb.IP
	}
	var b createBody
	_ = json.Unmarshal(c.Config, &b)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	config, hostConfig := s.effectiveConfig(c, b)
	writeJSON(w, http.StatusOK, map[string]any{
		"Id": c.ID, "Name": "/" + c.Name, "Created": ts(c.CreatedAt), "Image": c.ImageID, "RestartCount": c.RestartCount,
		"Path": c.Annotations[annotationCmd], "Args": []string{}, "Driver": "overlay2", "LogPath": c.LogPath,
		"State": map[string]any{
			"Status": dockerState(c), "Running": c.State == store.ContainerRunning, "Paused": c.Paused, "Restarting": false,
			"OOMKilled": c.Reason == "OOMKilled", "Dead": false, "Pid": c.Pid, "ExitCode": c.ExitCode, "Error": c.Message,
			"StartedAt": ts(c.StartedAt), "FinishedAt": ts(c.FinishedAt), "Health": s.healthOrNil(c.ID),
		},
		"Config":          config,
		"HostConfig":      hostConfig,
		"NetworkSettings": s.networkSettings(c, b, ip),
		"Mounts":          inspectMounts(b, anonymousOf(c), s.volumePath),
	})
}

// effectiveConfig is inspect's Config and HostConfig: the request as the
// client sent it (every field, known to Berth or not), the image's config
// under it where the request left a field empty, as dockerd shows them.
func (s *Server) effectiveConfig(c store.Container, b createBody) (config, hostConfig map[string]any) {
	config, hostConfig = map[string]any{}, map[string]any{}
	var req map[string]json.RawMessage
	_ = json.Unmarshal(c.Config, &req)
	for k, v := range req {
		switch k {
		case "HostConfig":
			_ = json.Unmarshal(v, &hostConfig)
		case "NetworkingConfig":
		default:
			config[k] = v
		}
	}
	var img ocispec.ImageConfig
	if rec, err := s.images.Resolve(c.ImageID); err == nil {
		if cfg, err := images.Config(rec); err == nil {
			img = cfg.Config
		}
	}
	// The request's variables, then the image's it does not set, as dockerd lists them.
	env := slices.Clone(b.Env)
	for _, kv := range img.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(b.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") || e == k }) {
			env = append(env, kv)
		}
	}
	cmd, entrypoint := b.Cmd, b.Entrypoint
	if len(entrypoint) == 0 {
		entrypoint = img.Entrypoint
		if len(cmd) == 0 {
			cmd = img.Cmd
		}
	}
	labels := maps.Clone(img.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, c.Labels)
	config["Image"], config["Hostname"], config["Env"], config["Cmd"], config["Entrypoint"] = c.ImageRef, b.Hostname, env, cmd, entrypoint
	config["WorkingDir"], config["User"], config["Labels"] = cmp.Or(b.WorkingDir, img.WorkingDir), cmp.Or(b.User, img.User), labels
	config["StopSignal"], config["Tty"], config["OpenStdin"] = cmp.Or(b.StopSignal, img.StopSignal), b.Tty, b.OpenStdin
	config["AttachStdin"], config["AttachStdout"], config["AttachStderr"] = false, !b.OpenStdin, !b.OpenStdin
	hostConfig["NetworkMode"], hostConfig["Runtime"] = cmp.Or(b.HostConfig.NetworkMode, "bridge"), "berth"
	// docker-py's run() reads the log driver to know it may read logs back.
	hostConfig["LogConfig"] = map[string]any{"Type": "json-file", "Config": map[string]string{}}
	hostConfig["RestartPolicy"] = map[string]any{"Name": policyName(b), "MaximumRetryCount": b.HostConfig.RestartPolicy.MaximumRetryCount}
	return config, hostConfig
}

// inspectMounts is inspect's Mounts: binds, volumes and tmpfs as dockerd lists them.
func inspectMounts(b createBody, anonymous []string, volume func(name string) string) []map[string]any {
	out := []map[string]any{}
	add := func(typ, name, src, dst string, ro bool) {
		m := map[string]any{"Type": typ, "Source": src, "Destination": dst, "RW": !ro, "Mode": "", "Propagation": ""}
		if typ == "volume" {
			m["Name"], m["Driver"] = name, "local"
		}
		if typ == "bind" {
			m["Propagation"] = "rprivate"
		}
		out = append(out, m)
	}
	for _, bind := range b.HostConfig.Binds {
		parts := strings.Split(bind, ":")
		if len(parts) < 2 {
			continue
		}
		ro := len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
		if filepath.IsAbs(parts[0]) {
			add("bind", "", parts[0], parts[1], ro)
		} else {
			add("volume", parts[0], volume(parts[0]), parts[1], ro)
		}
	}
	for _, m := range b.HostConfig.Mounts {
		switch m.Type {
		case "bind":
			add("bind", "", m.Source, m.Target, m.ReadOnly)
		case "volume", "":
			add("volume", m.Source, volume(m.Source), m.Target, m.ReadOnly)
		case "tmpfs":
			add("tmpfs", "", "", m.Target, m.ReadOnly)
		}
	}
	for _, v := range anonymous {
		name, dst, _ := strings.Cut(v, ":")
		add("volume", name, volume(name), dst, false)
	}
	return out
}

// parseFilters reads Docker's filters parameter: {"key":["v",...]}, or the
// {"key":{"v":true}} that the CLI sends.
func parseFilters(r *http.Request) (map[string][]string, error) {
	f := r.URL.Query().Get("filters")
	if f == "" {
		return nil, nil
	}
	var filters map[string][]string
	if err := json.Unmarshal([]byte(f), &filters); err == nil {
		return filters, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(f), &sets); err != nil {
		return nil, fmt.Errorf("invalid filters %q: %w", f, errdefs.ErrInvalidArgument)
	}
	filters = map[string][]string{}
	for k, vs := range sets {
		for v, on := range vs {
			if on {
				filters[k] = append(filters[k], v)
			}
		}
	}
	return filters, nil
}

// matchFilters is `docker ps --filter`: every key must match, any of a
// key's values may — but every label given must (dockerd's rule, which
// compose relies on to tell its services apart). Unknown keys match
// nothing, as dockerd refuses them.
func matchFilters(c store.Container, filters map[string][]string) bool {
	for key, values := range filters {
		if key == "label" {
			for _, v := range values {
				k, val, hasVal := strings.Cut(v, "=")
				if got, has := c.Labels[k]; !has || hasVal && got != val {
					return false
				}
			}
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "name":
				ok = ok || strings.Contains(c.Name, strings.TrimPrefix(v, "/"))
			case "id":
				ok = ok || strings.HasPrefix(c.ID, v)
			case "status":
				ok = ok || dockerState(c) == v
			case "ancestor":
				ok = ok || c.ImageRef == v || familiarName(c.ImageRef) == v || strings.HasPrefix(c.ImageID, v) ||
					strings.HasPrefix(c.ImageID, "sha256:"+v)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func dockerState(c store.Container) string {
	switch {
	case c.State == store.ContainerRunning && c.Paused:
		return "paused"
	case c.State == store.ContainerRunning:
		return "running"
	case c.State == store.ContainerCreated:
		return "created"
	default:
		return "exited"
	}
}

// dockerStatus is `docker ps`'s STATUS column.
func dockerStatus(c store.Container) string {
	switch c.State {
	case store.ContainerRunning:
		if c.Paused {
			return "Up " + humanDuration(time.Since(c.StartedAt)) + " (Paused)"
		}
		return "Up " + humanDuration(time.Since(c.StartedAt))
	case store.ContainerCreated:
		return "Created"
	default:
		return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, humanDuration(time.Since(c.FinishedAt)))
	}
}

func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s < 3600:
		if m := s / 60; m > 1 {
			return fmt.Sprintf("%d minutes", m)
		}
		return "About a minute"
	default:
		if h := s / 3600; h > 1 {
			return fmt.Sprintf("%d hours", h)
		}
		return "About an hour"
	}
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// randomID names an anonymous volume, as dockerd does: 64 hex digits.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// randomName is a name for a container created without one.
func randomName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "berth_" + hex.EncodeToString(b[:])
}
