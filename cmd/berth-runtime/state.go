package main

import (
	"encoding/json"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

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
