// Command berthd is the Berth daemon: the Kubernetes CRI on a unix socket.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	clog "github.com/containerd/log"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/daemon"
	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/version"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var configPath string
	overrides := config.Config{}
	root := &cobra.Command{
		Use:   "berthd",
		Short: "Berth container runtime daemon (Kubernetes CRI)",
		Long: `berthd serves the Kubernetes Container Runtime Interface (runtime.v1) on a unix
socket. It runs with embedded defaults; a config file (` + config.DefaultPath + `)
and flags override them. "berthd config default" prints the defaults.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			// Flags given on the command line override the file.
			for name, apply := range map[string]func(){
				"cri-socket":          func() { cfg.CRISocket = overrides.CRISocket },
				"docker-socket":       func() { cfg.DockerSocket = overrides.DockerSocket },
				"root":                func() { cfg.Root = overrides.Root },
				"state":               func() { cfg.State = overrides.State },
				"log-level":           func() { cfg.LogLevel = overrides.LogLevel },
				"log-format":          func() { cfg.LogFormat = overrides.LogFormat },
				"metrics-address":     func() { cfg.MetricsAddress = overrides.MetricsAddress },
				"registry-config-dir": func() { cfg.RegistryConfigDir = overrides.RegistryConfigDir },
				"cni-conf-dir":        func() { cfg.CNIConfDir = overrides.CNIConfDir },
				"debug-address":       func() { cfg.DebugAddress = overrides.DebugAddress },
				"cni-bin-dir":         func() { cfg.CNIBinDirs = overrides.CNIBinDirs },
				"nri-socket":          func() { cfg.NRI.SocketPath = overrides.NRI.SocketPath },
				"nri-plugin-path":     func() { cfg.NRI.PluginPath = overrides.NRI.PluginPath },
				"nri":                 func() { cfg.NRI.Enable = overrides.NRI.Enable },
			} {
				if cmd.Flags().Changed(name) {
					apply()
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			var level slog.Level
			_ = level.UnmarshalText([]byte(cfg.LogLevel))
			var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
			if cfg.LogFormat == "json" {
				h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
			}
			log := slog.New(h)
			// Libraries that log through slog's default, or through logrus
			// (NRI's, BuildKit's), write where berthd does.
			slog.SetDefault(log)
			clog.UseSlog()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
			go func() {
				sig := <-sigs
				log.Info("signal received: shutting down", slog.String("signal", sig.String()))
				stop()
			}()
			return daemon.Run(ctx, cfg, log)
		},
	}
	root.SetVersionTemplate("berthd version {{.Version}}\n")
	d := config.Default()
	f := root.Flags()
	root.PersistentFlags().StringVar(&configPath, "config", config.DefaultPath, "config file (missing default file = embedded defaults)")
	f.StringVar(&overrides.CRISocket, "cri-socket", d.CRISocket, "CRI gRPC unix socket")
	f.StringVar(&overrides.DockerSocket, "docker-socket", d.DockerSocket, "Docker Engine API unix socket (\"\" turns it off)")
	f.StringVar(&overrides.Root, "root", d.Root, "directory for persistent state")
	f.StringVar(&overrides.State, "state", d.State, "directory for runtime state")
	f.StringVar(&overrides.LogLevel, "log-level", d.LogLevel, "debug, info, warn or error")
	f.StringVar(&overrides.LogFormat, "log-format", d.LogFormat, "text or json")
	f.StringVar(&overrides.MetricsAddress, "metrics-address", d.MetricsAddress, "serve Prometheus metrics at http://ADDRESS/metrics (\"\" turns them off)")
	f.StringVar(&overrides.RegistryConfigDir, "registry-config-dir", d.RegistryConfigDir, "per-registry hosts.toml and CA files (mirrors, TLS)")
	f.StringVar(&overrides.CNIConfDir, "cni-conf-dir", d.CNIConfDir, "CNI network configs (the first by name is the pod network; none: the default bridge)")
	f.StringSliceVar(&overrides.CNIBinDirs, "cni-bin-dir", d.CNIBinDirs, "CNI plugin directories, searched in order (repeat or comma-separate)")
	f.StringVar(&overrides.DebugAddress, "debug-address", d.DebugAddress, "serve Go's pprof at /debug/pprof/ on this loopback host:port or unix socket (off when empty)")
	f.BoolVar(&overrides.NRI.Enable, "nri", d.NRI.Enable, "serve NRI plugins (--nri=false turns NRI off)")
	f.StringVar(&overrides.NRI.SocketPath, "nri-socket", d.NRI.SocketPath, "unix socket NRI plugins connect to (\"\": only pre-registered plugins)")
	f.StringVar(&overrides.NRI.PluginPath, "nri-plugin-path", d.NRI.PluginPath, "directory of pre-registered NRI plugins berthd starts")
	root.AddCommand(configCmd(), checkCmd(&configPath))
	return root
}

func configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Work with berthd's configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a config file: unknown keys and bad values, with their lines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := config.Load(args[0], true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the embedded default configuration as TOML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), config.Default().TOML())
			return nil
		},
	})
	return c
}

func checkCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check that this node can run Berth's pods: kernel, cgroups, overlayfs, seccomp, CNI, runtimes, disk",
		Long: `check looks at the node as berthd, with the same config file, would run on it,
and prints one line per fact: ok, warn or fail, and what to do about it. It
exits 1 when a check fails. The same table is in "crictl info".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			if daemon.PrintChecks(cmd.OutOrStdout(), daemon.Checks(cmd.Context(), cfg)) {
				return errors.New("the node is not ready: see the checks that failed")
			}
			return nil
		},
	}
}
