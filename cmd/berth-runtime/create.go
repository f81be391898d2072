package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/linux/nsenter"
)

func createFlags(cmd *cobra.Command, o *linux.CreateOpts) {
	o.NsenterLinked = nsenter.Enabled
	o.MountSeed = os.Getenv(linux.MountSeedEnv)
	o.MountView = os.Getenv(linux.MountViewEnv)
	o.GoInit = os.Getenv(linux.GoInitEnv) == "1"
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
