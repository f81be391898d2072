package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

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
