package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
)

// runCmd is create + start; attached, it waits for the process, forwards
// signals to it, deletes the container (unless --keep) and exits with its
// status.
func runCmd(g *globals) *cobra.Command {
	var o linux.CreateOpts
	var detach, keep bool
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
			status, err := linux.WaitForwarding(st.Pid, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
			if err != nil {
				return fmt.Errorf("wait for %s: %w", o.ID, err)
			}
			if !keep {
				if err := linux.Delete(g.root, o.ID, true); err != nil {
					return err
				}
			}
			os.Exit(status)
			return nil
		},
	}
	createFlags(cmd, &o)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait for the container's process")
	// BuildKit reads a step's cgroup after it exits, then deletes it.
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after its process exits")
	return cmd
}
