// Command berth-runtime is Berth's low-level OCI runtime, with runc's command line.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/internal/version"
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
		Use:   "berth-runtime",
		Short: "Berth's low-level OCI container runtime (runc-compatible command line)",
		Long: `Berth's low-level OCI container runtime (runc-compatible command line).

Environment:
  BERTH_GO_INIT=1     give every container the Go init instead of the C one
                      (which sets containers up without starting a Go runtime;
                      state.json's cInit says which ran)
  BERTH_MOUNT_SEED    a mount seed's path, from berthd (see oci/README.md)
  BERTH_MOUNT_VIEW    a mount view of berthd's state directory, from berthd`,
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
