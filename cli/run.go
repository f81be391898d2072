package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// createFlags are docker run's and docker create's.
type createFlags struct {
	name, workdir, user, entrypoint, hostname, network, restart, memory, cpus, stopSignal, gpus string
	env, volumes, publish, labels, tmpfs, addHosts, capAdd, capDrop, aliases, dns, devices      []string
	rm, interactive, tty, privileged, readOnly, init, publishAll                                bool
	expose                                                                                      []string
	stopTimeout                                                                                 int
}

func (f *createFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	// -h is --hostname here, as in docker run: help keeps its long form only.
	fl.Bool("help", false, "print usage")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume (SRC:DST[:ro], or DST for an anonymous one)")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port to the host ([IP:][HOSTPORT]:PORT[/PROTO]; no host port: the daemon picks one)")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to host ports the daemon picks")
	fl.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set metadata on the container")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (PATH[:OPTIONS])")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fl.StringArrayVar(&f.aliases, "network-alias", nil, "add a network-scoped alias for the container")
	fl.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fl.StringArrayVar(&f.devices, "device", nil, "add a host device (HOST[:CONTAINER[:PERMS]]) or a CDI device (vendor.com/class=name)")
	fl.StringVar(&f.gpus, "gpus", "", "GPU devices to add, through CDI (all, a count, or device=ID[,ID...])")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fl.StringVar(&f.network, "network", "", "connect a container to a network")
	fl.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fl.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fl.IntVar(&f.stopTimeout, "stop-timeout", -1, "timeout (in seconds) to stop a container")
	fl.BoolVar(&f.rm, "rm", false, "automatically remove the container when it exits")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fl.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
}

// request turns the flags and the image and command into the create call.
func (f *createFlags) request(image string, args []string) (client.ContainerCreateOptions, error) {
	cfg := &container.Config{Image: image, Cmd: args, Env: f.env, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive, AttachStdin: f.interactive, StopSignal: f.stopSignal,
		Labels: map[string]string{}}
	if f.entrypoint != "" {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	if f.stopTimeout >= 0 {
		cfg.StopTimeout = &f.stopTimeout
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	hc := &container.HostConfig{AutoRemove: f.rm, Privileged: f.privileged, ReadonlyRootfs: f.readOnly, CapAdd: f.capAdd, CapDrop: f.capDrop,
		ExtraHosts: f.addHosts, DNS: nil, NetworkMode: container.NetworkMode(f.network)}
	for _, d := range f.dns {
		addr, err := netip.ParseAddr(d)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("invalid argument %q for \"--dns\" flag: %w", d, err)
		}
		hc.DNS = append(hc.DNS, addr)
	}
	for _, v := range f.volumes {
		if !strings.Contains(v, ":") {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
			continue
		}
		hc.Binds = append(hc.Binds, v)
	}
	if len(f.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range f.tmpfs {
			p, o, _ := strings.Cut(t, ":")
			hc.Tmpfs[p] = o
		}
	}
	if f.restart != "" && f.restart != "no" {
		p, err := restartPolicy(f.restart)
		if err != nil {
			return client.ContainerCreateOptions{}, err
		}
		hc.RestartPolicy = p
	}
	if f.memory != "" {
		n, err := units.RAMInBytes(f.memory)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", f.memory, err)
		}
		hc.Memory = n
	}
	if f.cpus != "" {
		c, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("invalid argument %q for \"--cpus\" flag", f.cpus)
		}
		hc.NanoCPUs = int64(c * 1e9)
	}
	if f.init {
		hc.Init = &f.init
	}
	for _, d := range f.devices {
		hc.Devices = append(hc.Devices, deviceMapping(d))
	}
	if f.gpus != "" {
		r, err := gpuRequest(f.gpus)
		if err != nil {
			return client.ContainerCreateOptions{}, err
		}
		hc.DeviceRequests = append(hc.DeviceRequests, r)
	}
	for _, p := range f.publish {
		if err := addPublished(hc, p); err != nil {
			return client.ContainerCreateOptions{}, err
		}
	}
	hc.PublishAllPorts = f.publishAll
	for _, e := range f.expose {
		p, err := network.ParsePort(e)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("invalid argument %q for \"--expose\" flag: %w", e, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	if f.tty {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			hc.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	var nc *network.NetworkingConfig
	if len(f.aliases) > 0 && f.network != "" {
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{f.network: {Aliases: f.aliases}}}
	}
	return client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: f.name}, nil
}

// create makes the container, pulling its image first when the daemon does
// not have it (as docker run does).
func (a *app) create(ctx context.Context, req client.ContainerCreateOptions) (string, error) {
	c, err := a.client()
	if err != nil {
		return "", err
	}
	res, err := c.ContainerCreate(ctx, req)
	if cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		fmt.Fprintf(a.err, "Unable to find image '%s' locally\n", req.Config.Image)
		if err := a.pull(ctx, req.Config.Image, a.err); err != nil {
			return "", err
		}
		res, err = c.ContainerCreate(ctx, req)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(a.err, "WARNING:", w)
	}
	return res.ID, nil
}

func (a *app) createCmd() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(args[0], args[1:])
			if err != nil {
				return err
			}
			id, err := a.create(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, id)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) runCmd() *cobra.Command {
	var f createFlags
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req, err := f.request(args[0], args[1:])
			if err != nil {
				return err
			}
			id, err := a.create(ctx, req)
			if err != nil {
				return withCode(err, 125)
			}
			c, _ := a.client()
			if detach {
				if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
					return withCode(err, 125)
				}
				fmt.Fprintln(a.out, id)
				return nil
			}
			return a.attachRun(ctx, id, f)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run the container in the background and print its ID")
	return cmd
}

// attachRun is docker run without -d: attach, start, stream until the
// container ends, and end with its exit code.
func (a *app) attachRun(ctx context.Context, id string, f createFlags) error {
	c, _ := a.client()
	cond := container.WaitConditionNextExit
	if f.rm {
		cond = container.WaitConditionRemoved
	}
	wait := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	att, err := c.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: f.interactive, Stdout: true, Stderr: true})
	if err != nil {
		return withCode(err, 125)
	}
	defer att.Close()
	restore := func() {}
	if f.tty && f.interactive {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) }
		}
	}
	defer restore()
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		restore()
		return withCode(err, 125)
	}
	rctx, stopResize := context.WithCancel(ctx)
	defer stopResize()
	if f.tty {
		followResize(rctx, func(h, w uint) { _, _ = c.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w}) })
	}
	watch := &detachWatch{r: a.in}
	if f.interactive {
		go func() {
			_, _ = io.Copy(att.Conn, watch)
			_ = att.CloseWrite()
		}()
	}
	outDone := make(chan error, 1)
	go func() {
		var err error
		if f.tty {
			_, err = io.Copy(a.out, att.Reader)
		} else {
			_, err = stdcopy.StdCopy(a.out, a.err, att.Reader)
		}
		outDone <- err
	}()
	select {
	case res := <-wait.Result:
		<-outDone
		restore()
		if res.Error != nil && res.Error.Message != "" {
			return withCode(errors.New(res.Error.Message), 125)
		}
		if res.StatusCode != 0 {
			return ExitError{Code: int(res.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return withCode(err, 125)
	case <-outDone:
		// The stream ends with the container, or with a detach (the
		// detach keys, which berthd acts on), after which it runs on.
		if watch.detached.Load() {
			restore()
			fmt.Fprintln(a.err)
			return nil
		}
		select {
		case res := <-wait.Result:
			if res.StatusCode != 0 {
				return ExitError{Code: int(res.StatusCode)}
			}
			return nil
		case err := <-wait.Error:
			return withCode(err, 125)
		}
	}
}

// codedError carries docker's exit code for an error it also prints.
type codedError struct {
	error
	code int
}

func withCode(err error, code int) error { return codedError{err, code} }

// detachWatch passes the terminal's input on and notes whether docker's
// default detach keys (ctrl-p ctrl-q) went by: berthd detaches on them, and
// the end of the stream then is not the container's.
type detachWatch struct {
	r        io.Reader
	prev     byte
	detached atomic.Bool
}

func (d *detachWatch) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	for _, b := range p[:n] {
		if d.prev == 0x10 && b == 0x11 {
			d.detached.Store(true)
		}
		d.prev = b
	}
	return n, err
}
