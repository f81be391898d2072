package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

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
