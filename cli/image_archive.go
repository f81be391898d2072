package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (a *app) historyCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "history [OPTIONS] IMAGE", Short: "Show the history of an image", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			p, err := newPrinter(a.out, format, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
				map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
			if err != nil {
				return err
			}
			for _, h := range res.Items {
				id := h.ID
				if id != "<missing>" {
					id = shortID(id)
				}
				by := h.CreatedBy
				if len(by) > 45 {
					by = by[:44] + "…"
				}
				row := struct{ ID, CreatedSince, CreatedBy, Size, Comment string }{id, ago(time.Unix(h.Created, 0)), by, size(h.Size), h.Comment}
				if err := p.row(row); err != nil {
					return err
				}
			}
			return p.flush()
		}),
	}
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template")
	return cmd
}

func (a *app) saveCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "save [OPTIONS] IMAGE [IMAGE...]", Short: "Save one or more images to a tar archive", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			rc, err := c.ImageSave(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer rc.Close()
			return writeOutput(rc, output, a.out)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

func (a *app) loadCmd() *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use: "load [OPTIONS]", Short: "Load an image from a tar archive or STDIN", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			in := a.in
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			rc, err := c.ImageLoad(cmd.Context(), in, client.ImageLoadWithQuiet(quiet))
			if err != nil {
				return err
			}
			defer rc.Close()
			return a.printStream(rc)
		}),
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}

// printStream prints a JSON message stream's text (build, load), ending
// with its error, if it reports one.
func (a *app) printStream(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return ExitError{Code: 1, msg: m.Error.Message}
		}
		if m.Stream != "" {
			fmt.Fprint(a.out, m.Stream)
		} else if m.Status != "" {
			fmt.Fprintln(a.out, m.Status)
		}
	}
}
