package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/defaults"
)

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
