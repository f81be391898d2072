package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// eachContainer runs f on each named container, printing each name as
// docker does, and fails at the end if any failed.
func (a *app) eachContainer(ctx context.Context, names []string, f func(context.Context, *client.Client, string) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	failed := 0
	for _, n := range names {
		if err := f(ctx, c, n); err != nil {
			fmt.Fprintln(a.err, errorText(err))
			failed++
			continue
		}
		fmt.Fprintln(a.out, n)
	}
	if failed > 0 {
		return ExitError{Code: 1}
	}
	return nil
}

func (a *app) startCmd() *cobra.Command {
	return &cobra.Command{
		Use: "start CONTAINER [CONTAINER...]", Short: "Start one or more stopped containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerStart(ctx, n, client.ContainerStartOptions{})
				return err
			})
		},
	}
}

func (a *app) stopCmd() *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use: "stop [OPTIONS] CONTAINER [CONTAINER...]", Short: "Stop one or more running containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ContainerStopOptions{Signal: signal}
			if cmd.Flags().Changed("time") {
				o.Timeout = &timeout
			}
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerStop(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func (a *app) restartCmd() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use: "restart [OPTIONS] CONTAINER [CONTAINER...]", Short: "Restart one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ContainerRestartOptions{}
			if cmd.Flags().Changed("time") {
				o.Timeout = &timeout
			}
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerRestart(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	return cmd
}

func (a *app) killCmd() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use: "kill [OPTIONS] CONTAINER [CONTAINER...]", Short: "Kill one or more running containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerKill(ctx, n, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func (a *app) rmCmd() *cobra.Command {
	var o client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use: "rm [OPTIONS] CONTAINER [CONTAINER...]", Aliases: []string{"remove"}, Short: "Remove one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerRemove(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "force the removal of a running container")
	cmd.Flags().BoolVarP(&o.RemoveVolumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func (a *app) renameCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rename CONTAINER NEW_NAME", Short: "Rename a container", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]})
			return err
		}),
	}
}

func (a *app) waitCmd() *cobra.Command {
	return &cobra.Command{
		Use: "wait CONTAINER [CONTAINER...]", Short: "Block until one or more containers stop, then print their exit codes", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			for _, n := range args {
				w := c.ContainerWait(cmd.Context(), n, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
				select {
				case r := <-w.Result:
					fmt.Fprintln(a.out, r.StatusCode)
				case err := <-w.Error:
					return err
				}
			}
			return nil
		}),
	}
}

// psRow is a container as docker ps's templates name its fields.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Names, Networks string
	Labels                                                                           string
	summary                                                                          container.Summary
}

// Label is docker ps's {{.Label "key"}}.
func (r psRow) Label(k string) string { return r.summary.Labels[k] }

func (a *app) psCmd() *cobra.Command {
	var all, quiet, noTrunc, latest, allNamespaces bool
	var last int
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use: "ps [OPTIONS]", Short: "List containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if allNamespaces {
				if err := a.listCRIContainers(cmd.Context()); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o := client.ContainerListOptions{All: all || last > 0 || latest, Filters: client.Filters{}}
			if latest {
				last = 1
			}
			o.Limit = last
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				o.Filters.Add(k, v)
			}
			res, err := c.ContainerList(cmd.Context(), o)
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range res.Items {
					fmt.Fprintln(a.out, maybeTrunc(s.ID, noTrunc))
				}
				return nil
			}
			p, err := newPrinter(a.out, format, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
				map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED", "Status": "STATUS",
					"Ports": "PORTS", "Names": "NAMES", "State": "STATE", "CreatedAt": "CREATED AT", "Networks": "NETWORKS", "Labels": "LABELS"})
			if err != nil {
				return err
			}
			for _, s := range res.Items {
				if err := p.row(summaryRow(s, noTrunc)); err != nil {
					return err
				}
			}
			return p.flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVarP(&latest, "latest", "l", false, "show the latest created container")
	fl.IntVarP(&last, "last", "n", 0, "show n last created containers")
	fl.StringVar(&format, "format", "", "format output using a Go template, or json")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	fl.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list Kubernetes containers too, read from the CRI (read-only)")
	return cmd
}

func maybeTrunc(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	return shortID(id)
}

func summaryRow(s container.Summary, noTrunc bool) psRow {
	names := make([]string, len(s.Names))
	for i, n := range s.Names {
		names[i] = strings.TrimPrefix(n, "/")
	}
	cmd := s.Command
	if !noTrunc && len(cmd) > 20 {
		cmd = cmd[:19] + "…"
	}
	var ports []string
	for _, p := range s.Ports {
		if p.PublicPort != 0 {
			ports = append(ports, fmt.Sprintf("%s:%d->%d/%s", p.IP, p.PublicPort, p.PrivatePort, p.Type))
		} else {
			ports = append(ports, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
		}
	}
	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	created := time.Unix(s.Created, 0)
	return psRow{ID: maybeTrunc(s.ID, noTrunc), Image: s.Image, Command: strconv.Quote(cmd), CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: ago(created), Ports: strings.Join(ports, ", "), State: string(s.State), Status: s.Status, Names: strings.Join(names, ","),
		Networks: string(s.HostConfig.NetworkMode), Labels: strings.Join(labels, ","), summary: s}
}

func (a *app) logsCmd() *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use: "logs [OPTIONS] CONTAINER", Short: "Fetch the logs of a container", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			info, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			o.ShowStdout, o.ShowStderr = true, true
			rc, err := c.ContainerLogs(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Container.Config != nil && info.Container.Config.Tty {
				_, err = io.Copy(a.out, rc)
			} else {
				_, err = stdcopy.StdCopy(a.out, a.err, rc)
			}
			return err
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Follow, "follow", "f", false, "follow log output")
	fl.BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	fl.StringVar(&o.Since, "since", "", "show logs since a timestamp or relative time")
	fl.StringVar(&o.Until, "until", "", "show logs before a timestamp or relative time")
	fl.StringVarP(&o.Tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	return cmd
}

func (a *app) execCmd() *cobra.Command {
	var o client.ExecCreateOptions
	var detach, interactive bool
	cmd := &cobra.Command{
		Use: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", Short: "Execute a command in a running container", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client()
			if err != nil {
				return err
			}
			o.Cmd, o.AttachStdin, o.AttachStdout, o.AttachStderr = args[1:], interactive, !detach, !detach
			if o.TTY {
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					o.ConsoleSize = client.ConsoleSize{Height: uint(h), Width: uint(w)}
				}
			}
			ex, err := c.ExecCreate(ctx, args[0], o)
			if err != nil {
				return withCode(err, 126)
			}
			if detach {
				_, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
				return err
			}
			att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: o.TTY, ConsoleSize: o.ConsoleSize})
			if err != nil {
				return withCode(err, 126)
			}
			defer att.Close()
			if o.TTY && interactive {
				if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					defer term.Restore(int(os.Stdin.Fd()), st)
				}
			}
			if interactive {
				go func() {
					_, _ = io.Copy(att.Conn, a.in)
					_ = att.CloseWrite()
				}()
			}
			if o.TTY {
				rctx, stopResize := context.WithCancel(ctx)
				defer stopResize()
				followResize(rctx, func(h, w uint) { _, _ = c.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: h, Width: w}) })
				_, err = io.Copy(a.out, att.Reader)
			} else {
				_, err = stdcopy.StdCopy(a.out, a.err, att.Reader)
			}
			if err != nil {
				return err
			}
			res, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return ExitError{Code: res.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-TTY")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "set environment variables")
	fl.StringVarP(&o.User, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "working directory inside the container")
	return cmd
}

func (a *app) inspectCmd() *cobra.Command {
	var format, typ string
	cmd := &cobra.Command{
		Use: "inspect [OPTIONS] NAME|ID [NAME|ID...]", Short: "Return low-level information on containers, images, volumes or networks", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			var objs []json.RawMessage
			failed := false
			for _, n := range args {
				raw, err := a.inspectRaw(cmd.Context(), c, n, typ)
				if err != nil {
					fmt.Fprintln(a.err, errorText(err))
					failed = true
					continue
				}
				objs = append(objs, raw)
			}
			if err := a.printInspect(objs, format); err != nil {
				return err
			}
			if failed {
				return ExitError{Code: 1}
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of this type (container, image, volume, network)")
	return cmd
}

// inspectRaw finds name among containers, then images, volumes, networks.
func (a *app) inspectRaw(ctx context.Context, c *client.Client, name, typ string) (json.RawMessage, error) {
	var firstErr error
	try := func(kind string, f func() (json.RawMessage, error)) json.RawMessage {
		if typ != "" && typ != kind {
			return nil
		}
		raw, err := f()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return raw
	}
	if raw := try("container", func() (json.RawMessage, error) {
		r, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		return r.Raw, err
	}); raw != nil {
		return raw, nil
	}
	if raw := try("image", func() (json.RawMessage, error) {
		r, err := c.ImageInspect(ctx, name)
		if err != nil {
			return nil, err
		}
		return json.Marshal(r.InspectResponse)
	}); raw != nil {
		return raw, nil
	}
	if raw := try("volume", func() (json.RawMessage, error) {
		r, err := c.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
		return r.Raw, err
	}); raw != nil {
		return raw, nil
	}
	if raw := try("network", func() (json.RawMessage, error) {
		r, err := c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		return r.Raw, err
	}); raw != nil {
		return raw, nil
	}
	return nil, fmt.Errorf("Error: No such object: %s", name)
}

// printInspect prints objects as a JSON array, or each through format.
func (a *app) printInspect(objs []json.RawMessage, format string) error {
	if format == "" {
		if objs == nil {
			objs = []json.RawMessage{}
		}
		b, err := json.MarshalIndent(objs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.out, string(b))
		return err
	}
	p, err := newPrinter(a.out, format, "", nil)
	if err != nil {
		return err
	}
	for _, raw := range objs {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // numbers print as the daemon sent them, as the docker CLI's do
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := p.row(v); err != nil {
			return err
		}
	}
	return p.flush()
}
