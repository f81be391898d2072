// Command berth-runtime is Berth's low-level OCI runtime, with runc's command line.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/oci/linux"
)

func init() {
	// The container's init must stay on the main thread from the start:
	// the thread that sets namespaces, credentials and capabilities is the one that execs.
	if len(os.Args) > 1 && os.Args[1] == linux.InitArg {
		runtime.GOMAXPROCS(1)
		runtime.LockOSThread()
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == linux.InitArg {
		err := linux.Init()
		fmt.Fprintln(os.Stderr, "berth-runtime init:", err)
		os.Exit(1)
	}
	g := &globals{}
	root := newRootCmd(g)
	if err := root.Execute(); err != nil {
		g.logError(err)
		os.Exit(1)
	}
}

type globals struct {
	root      string
	logFile   string
	logFormat string
	debug     bool
	systemd   bool
}

// logError reports a failure on stderr and, as runc does, in --log, where a
// shim looks for the reason a create failed.
func (g *globals) logError(err error) {
	fmt.Fprintln(os.Stderr, "berth-runtime:", err)
	if g.logFile == "" {
		return
	}
	f, ferr := os.OpenFile(g.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	var h slog.Handler = slog.NewTextHandler(f, nil)
	if g.logFormat == "json" {
		h = slog.NewJSONHandler(f, nil)
	}
	slog.New(h).Error(err.Error())
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "Berth's low-level OCI container runtime (runc-compatible command line)",
		Version:       fmt.Sprintf("%s\nspec: %s", version.Version, version.OCISpec),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.systemd {
				return errors.New("--systemd-cgroup: the systemd cgroup driver is not supported; use the cgroupfs driver")
			}
			if g.logFormat != "text" && g.logFormat != "json" {
				return fmt.Errorf("--log-format %q: want text or json", g.logFormat)
			}
			level := slog.LevelWarn
			if g.debug {
				level = slog.LevelDebug
			}
			out := io.Writer(os.Stderr)
			if g.logFile != "" {
				f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return fmt.Errorf("--log %s: %w", g.logFile, err)
				}
				out = f
			}
			var h slog.Handler = slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})
			if g.logFormat == "json" {
				h = slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})
			}
			slog.SetDefault(slog.New(h))
			return nil
		},
	}
	root.SetVersionTemplate("berth-runtime version {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", "/run/berth-runtime", "directory for the containers' state")
	pf.StringVar(&g.logFile, "log", "", "write errors and debug output to this file")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "log debug output")
	pf.BoolVar(&g.systemd, "systemd-cgroup", false, "use the systemd cgroup driver (not supported)")
	root.AddCommand(createCmd(g), startCmd(g), runCmd(g), stateCmd(g), killCmd(g), deleteCmd(g), listCmd(g), psCmd(g), specCmd())
	return root
}

func createFlags(cmd *cobra.Command, o *linux.CreateOpts) {
	cmd.Flags().StringVarP(&o.Bundle, "bundle", "b", ".", "path to the bundle directory")
	cmd.Flags().StringVar(&o.PidFile, "pid-file", "", "write the init's PID to this file")
	var consoleSocket string
	cmd.Flags().StringVar(&consoleSocket, "console-socket", "", "unix socket to send the pty master to (process.terminal)")
	cmd.Flags().Bool("no-pivot", false, "accepted for runc compatibility; pivot_root is always used")
	cmd.Flags().Bool("no-new-keyring", false, "accepted for runc compatibility")
}

func createCmd(g *globals) *cobra.Command {
	var o linux.CreateOpts
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "Create a container, ready to be started",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Root, o.ID = g.root, args[0]
			o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
			return linux.Create(cmd.Context(), o)
		},
	}
	createFlags(cmd, &o)
	return cmd
}

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER_ID",
		Short: "Start a created container's process",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return linux.Start(cmd.Context(), g.root, args[0])
		},
	}
}

// runCmd is create + start; attached, it waits for the process, forwards
// signals to it, deletes the container and exits with its status.
func runCmd(g *globals) *cobra.Command {
	var o linux.CreateOpts
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER_ID",
		Short: "Create and start a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Root, o.ID = g.root, args[0]
			o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
			ctx := cmd.Context()
			if !detach {
				// Adopt the init when create's internals let go of it, to wait for it.
				if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
					return fmt.Errorf("become subreaper: %w", err)
				}
			}
			if err := linux.Create(ctx, o); err != nil {
				return err
			}
			if err := linux.Start(ctx, g.root, o.ID); err != nil {
				_ = linux.Delete(g.root, o.ID, true)
				return err
			}
			if detach {
				return nil
			}
			st, err := linux.Load(g.root, o.ID)
			if err != nil {
				return err
			}
			sigs := make(chan os.Signal, 8)
			signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
			go func() {
				for s := range sigs {
					_ = unix.Kill(st.Pid, s.(unix.Signal))
				}
			}()
			var ws unix.WaitStatus
			for {
				_, err = unix.Wait4(st.Pid, &ws, 0, nil)
				if err != unix.EINTR {
					break
				}
			}
			if err != nil {
				return fmt.Errorf("wait for %s: %w", o.ID, err)
			}
			if err := linux.Delete(g.root, o.ID, true); err != nil {
				return err
			}
			switch {
			case ws.Exited():
				os.Exit(ws.ExitStatus())
			case ws.Signaled():
				os.Exit(128 + int(ws.Signal()))
			}
			return nil
		},
	}
	createFlags(cmd, &o)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait for the container's process")
	return cmd
}

func stateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER_ID",
		Short: "Print the container's state as OCI state JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := linux.Load(g.root, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), stateJSON(g.root, s))
		},
	}
}

// runcState is "runc state"'s output: the OCI state plus runc's extra fields,
// which tools written for runc parse.
type runcState struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func stateJSON(root string, s *linux.State) runcState {
	return runcState{State: s.OCIState(root), Rootfs: s.Rootfs, Created: s.Created, Owner: s.Owner}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER_ID [SIGNAL]",
		Short: "Send a signal (default SIGTERM) to the container's init, or with --all to all its processes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := "SIGTERM"
			if len(args) == 2 {
				sig = args[1]
			}
			s, err := linux.ParseSignal(sig)
			if err != nil {
				return err
			}
			return linux.Kill(g.root, args[0], s, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container")
	return cmd
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] CONTAINER_ID",
		Short: "Delete a stopped container's state and cgroup",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return linux.Delete(g.root, args[0], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it is running")
	return cmd
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := linux.List(g.root)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, s := range all {
					fmt.Fprintln(out, s.ID)
				}
				return nil
			}
			switch format {
			case "json":
				list := make([]runcState, 0, len(all))
				for _, s := range all {
					list = append(list, stateJSON(g.root, s))
				}
				return printJSON(out, list)
			case "table":
				tw := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
				for _, s := range all {
					st := stateJSON(g.root, s)
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", st.ID, st.Pid, st.Status, st.Bundle,
						st.Created.Format(time.RFC3339Nano), "root")
				}
				return tw.Flush()
			}
			return fmt.Errorf("--format %q: want table or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only IDs")
	return cmd
}

func psCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] CONTAINER_ID",
		Short: "List the processes running in a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pids, err := linux.Pids(g.root, args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(cmd.OutOrStdout(), pids)
			}
			strs := make([]string, len(pids))
			for i, p := range pids {
				strs[i] = fmt.Sprint(p)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "PID\n"+strings.Join(strs, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

func specCmd() *cobra.Command {
	var bundle string
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "Write a default config.json into the bundle directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists: remove it first", p)
			}
			b, err := json.MarshalIndent(oci.DefaultSpec(), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(p, append(b, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "the bundle directory")
	return cmd
}
