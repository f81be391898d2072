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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/oci/defaults"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/linux/nsenter"
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
		var reported linux.ReportedError
		if !errors.As(err, &reported) {
			fmt.Fprintln(os.Stderr, "berth-runtime init:", err)
		}
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
	root.AddCommand(createCmd(g), startCmd(g), runCmd(g), stateCmd(g), killCmd(g), deleteCmd(g), listCmd(g), psCmd(g), specCmd(), execCmd(g),
		pauseCmd(g), resumeCmd(g), updateCmd(g), featuresCmd())
	return root
}

func createFlags(cmd *cobra.Command, o *linux.CreateOpts) {
	o.NsenterLinked = nsenter.Enabled
	cmd.Flags().StringVarP(&o.Bundle, "bundle", "b", ".", "path to the bundle directory")
	cmd.Flags().StringVar(&o.PidFile, "pid-file", "", "write the init's PID to this file")
	cmd.Flags().StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to send the pty master to (process.terminal)")
	cmd.Flags().BoolVar(&o.NoPivot, "no-pivot", false, "enter the root filesystem with MS_MOVE and chroot instead of pivot_root (for a host root on ramfs; less isolated)")
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
			b, err := json.MarshalIndent(defaults.DefaultSpec(), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(p, append(b, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "the bundle directory")
	return cmd
}

func execCmd(g *globals) *cobra.Command {
	var (
		processFile, pidFile, consoleSocket, cwd, user string
		env, caps                                      []string
		gids                                           []uint32
		tty, detach, noNewPrivs                        bool
		preserveFds                                    int
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARG...]]",
		Short: "Run a process in a running container",
		Long: `Run a process in a running container: COMMAND with the container's own
environment, user, capabilities and working directory (each overridable), or
the process described by --process.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if preserveFds > 0 {
				return errors.New("--preserve-fds is not supported yet")
			}
			if tty && consoleSocket == "" {
				return errors.New("--tty needs --console-socket to send the pty master to")
			}
			id := args[0]
			p, err := execProcess(g.root, id, processFile, args[1:], cwd, user, env, caps, gids, noNewPrivs)
			if err != nil {
				return err
			}
			if tty {
				p.Terminal = true
			}
			if !detach {
				// The process is forked by an intermediate that exits: adopt it.
				if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
					return fmt.Errorf("become subreaper: %w", err)
				}
			}
			pid, err := linux.Exec(cmd.Context(), linux.ExecOpts{
				Root: g.root, ID: id, Process: p, PidFile: pidFile, NsenterLinked: nsenter.Enabled, ConsoleSocket: consoleSocket,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			if err != nil || detach {
				return err
			}
			os.Exit(waitForward(pid))
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&processFile, "process", "p", "", "path to a process.json")
	f.StringVar(&pidFile, "pid-file", "", "write the process's PID to this file")
	f.StringVar(&consoleSocket, "console-socket", "", "unix socket to send the pty master to")
	f.StringVar(&cwd, "cwd", "", "working directory")
	f.StringVarP(&user, "user", "u", "", "UID[:GID]")
	f.StringArrayVarP(&env, "env", "e", nil, "KEY=VALUE to set (repeatable)")
	f.StringArrayVarP(&caps, "cap", "c", nil, "capability to add (repeatable)")
	f.Var(newUint32Slice(&gids), "additional-gids", "additional group IDs (repeatable)")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY (its master goes to --console-socket)")
	f.BoolVarP(&detach, "detach", "d", false, "do not wait for the process")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.IntVar(&preserveFds, "preserve-fds", 0, "pass this many extra fds (not supported yet)")
	return cmd
}

// execProcess builds the process to exec: --process as given, else the
// container's own process with args and the flags' overrides, as runc does.
func execProcess(root, id, processFile string, args []string, cwd, user string, env, caps []string, gids []uint32, nnp bool) (*specs.Process, error) {
	if processFile != "" {
		b, err := os.ReadFile(processFile)
		if err != nil {
			return nil, fmt.Errorf("--process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", processFile, err)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec needs a command or --process")
	}
	st, err := linux.Load(root, id)
	if err != nil {
		return nil, err
	}
	spec, err := linux.LoadSpec(st.Bundle)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = false
	p.Env = append(append([]string(nil), p.Env...), env...)
	if cwd != "" {
		p.Cwd = cwd
	}
	if user != "" {
		u, g, hasG := strings.Cut(user, ":")
		var uid, gid uint64
		if uid, err = strconv.ParseUint(u, 10, 32); err != nil {
			return nil, fmt.Errorf("--user %q: want UID[:GID]", user)
		}
		p.User.UID = uint32(uid)
		if hasG {
			if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
				return nil, fmt.Errorf("--user %q: want UID[:GID]", user)
			}
			p.User.GID = uint32(gid)
		}
	}
	if len(gids) > 0 {
		p.User.AdditionalGids = gids
	}
	if len(caps) > 0 && p.Capabilities != nil {
		c := *p.Capabilities
		c.Bounding = append(append([]string(nil), c.Bounding...), caps...)
		c.Effective = append(append([]string(nil), c.Effective...), caps...)
		c.Permitted = append(append([]string(nil), c.Permitted...), caps...)
		p.Capabilities = &c
	}
	p.NoNewPrivileges = p.NoNewPrivileges || nnp
	// The container's oom_score_adj already applies; asking again could need
	// CAP_SYS_RESOURCE for nothing.
	p.OOMScoreAdj = nil
	return &p, nil
}

// waitForward waits for pid (our adopted child), forwarding signals, and
// returns its exit status as a shell would.
func waitForward(pid int) int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	go func() {
		for s := range sigs {
			_ = unix.Kill(pid, s.(unix.Signal))
		}
	}()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// uint32Slice is a repeatable --flag of uint32 values.
type uint32Slice struct{ p *[]uint32 }

func newUint32Slice(p *[]uint32) *uint32Slice { return &uint32Slice{p} }
func (u *uint32Slice) String() string         { return fmt.Sprint(*u.p) }
func (u *uint32Slice) Type() string           { return "uint32" }
func (u *uint32Slice) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return err
		}
		*u.p = append(*u.p, uint32(n))
	}
	return nil
}

func pauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER_ID",
		Short: "Freeze every process of a running container",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return linux.Pause(g.root, args[0]) },
	}
}

func resumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume CONTAINER_ID",
		Short: "Thaw a paused container",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return linux.Resume(g.root, args[0]) },
	}
}

// updateCmd takes runc's flags: --resources FILE (LinuxResources JSON, "-"
// for stdin), or the common limits one by one.
func updateCmd(g *globals) *cobra.Command {
	var (
		resourcesFile                                   string
		memory, memoryReservation, memorySwap, cpuQuota int64
		cpuShares, cpuPeriod                            uint64
		cpusetCpus, cpusetMems                          string
		pidsLimit                                       int64
		blkioWeight                                     uint16
	)
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "Change a running container's resource limits",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &specs.LinuxResources{}
			if resourcesFile != "" {
				var b []byte
				var err error
				if resourcesFile == "-" {
					b, err = io.ReadAll(os.Stdin)
				} else {
					b, err = os.ReadFile(resourcesFile)
				}
				if err != nil {
					return fmt.Errorf("--resources: %w", err)
				}
				if err := json.Unmarshal(b, r); err != nil {
					return fmt.Errorf("--resources %s: %w", resourcesFile, err)
				}
			}
			f := cmd.Flags()
			mem := func() *specs.LinuxMemory {
				if r.Memory == nil {
					r.Memory = &specs.LinuxMemory{}
				}
				return r.Memory
			}
			cpu := func() *specs.LinuxCPU {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				return r.CPU
			}
			if f.Changed("memory") {
				mem().Limit = &memory
			}
			if f.Changed("memory-reservation") {
				mem().Reservation = &memoryReservation
			}
			if f.Changed("memory-swap") {
				mem().Swap = &memorySwap
			}
			if f.Changed("cpu-shares") {
				cpu().Shares = &cpuShares
			}
			if f.Changed("cpu-quota") {
				cpu().Quota = &cpuQuota
			}
			if f.Changed("cpu-period") {
				cpu().Period = &cpuPeriod
			}
			if f.Changed("cpuset-cpus") {
				cpu().Cpus = cpusetCpus
			}
			if f.Changed("cpuset-mems") {
				cpu().Mems = cpusetMems
			}
			if f.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: pidsLimit}
			}
			if f.Changed("blkio-weight") {
				r.BlockIO = &specs.LinuxBlockIO{Weight: &blkioWeight}
			}
			return linux.Update(g.root, args[0], r)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resourcesFile, "resources", "r", "", "LinuxResources JSON file (- for stdin)")
	f.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	f.Int64Var(&memoryReservation, "memory-reservation", 0, "memory soft limit in bytes")
	f.Int64Var(&memorySwap, "memory-swap", 0, "memory+swap limit in bytes (-1: unlimited)")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	f.Uint64Var(&cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs allowed")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes allowed")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of processes")
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "block IO weight (10 to 1000)")
	return cmd
}

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "Print what this runtime implements, as the OCI features JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printJSON(cmd.OutOrStdout(), linux.Features())
		},
	}
}
