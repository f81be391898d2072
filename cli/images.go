package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) pullCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use: "pull [OPTIONS] NAME[:TAG|@DIGEST]", Short: "Download an image from a registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := a.out
			if quiet {
				w = io.Discard
			}
			if err := a.pull(cmd.Context(), args[0], w); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(a.out, args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}

// pull pulls ref, drawing the daemon's progress as docker does: a line a
// layer with a progress bar, redrawn in place on a terminal.
func (a *app) pull(ctx context.Context, ref string, w io.Writer) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	resp, err := c.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: a.registryAuth(serverOf(ref))})
	if err != nil {
		return err
	}
	defer resp.Close()
	return a.showProgress(resp, w)
}

// showProgress draws a pull's or push's JSON messages on w (bars on a
// terminal) and returns the error the stream reports, if any.
func (a *app) showProgress(r io.Reader, w io.Writer) error {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	p := &progress{w: w, tty: tty, line: map[string]int{}}
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return fmt.Errorf("%s", m.Error.Message)
		}
		p.show(m)
	}
}

// progress draws pull messages: with a terminal each layer keeps its line
// and is redrawn there; without one, a line a change of status.
type progress struct {
	w     io.Writer
	tty   bool
	line  map[string]int // layer → its line, counted from the top
	lines int
	last  map[string]string
}

func (p *progress) show(m jsonstream.Message) {
	text := m.Status
	if m.Progress != nil && m.Progress.Total > 0 {
		text += " " + bar(m.Progress.Current, m.Progress.Total)
	}
	if m.ID == "" {
		fmt.Fprintln(p.w, text)
		p.lines++
		return
	}
	if !p.tty {
		if p.last == nil {
			p.last = map[string]string{}
		}
		if p.last[m.ID] != m.Status { // one line a status, not one a chunk
			p.last[m.ID] = m.Status
			fmt.Fprintf(p.w, "%s: %s\n", m.ID, m.Status)
		}
		return
	}
	n, ok := p.line[m.ID]
	if !ok {
		n = p.lines
		p.line[m.ID] = n
		p.lines++
		fmt.Fprintf(p.w, "%s: %s\n", m.ID, text)
		return
	}
	up := p.lines - n
	fmt.Fprintf(p.w, "\x1b[%dA\r\x1b[2K%s: %s\r\x1b[%dB", up, m.ID, text, up)
}

// bar is docker's "[=====>     ]  1.2MB/3.4MB".
func bar(cur, total int64) string {
	const width = 50
	n := int(float64(width) * float64(cur) / float64(total))
	n = max(0, min(width, n))
	arrow := strings.Repeat("=", n)
	if n < width {
		arrow += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", arrow, size(cur), size(total))
}

// imageRow is an image as docker images's templates name its fields.
type imageRow struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size string
}

func (a *app) imagesCmd() *cobra.Command {
	var quiet, noTrunc, digests bool
	var format string
	cmd := &cobra.Command{
		Use: "images [OPTIONS] [REPOSITORY[:TAG]]", Short: "List images", Args: cobra.MaximumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.ImageList(cmd.Context(), client.ImageListOptions{})
			if err != nil {
				return err
			}
			def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			if quiet {
				format = "{{.ID}}"
			}
			p, err := newPrinter(a.out, format, def, map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
				"CreatedSince": "CREATED", "Size": "SIZE", "Digest": "DIGEST", "CreatedAt": "CREATED AT"})
			if err != nil {
				return err
			}
			for _, img := range res.Items {
				tags := img.RepoTags
				if len(tags) == 0 {
					tags = []string{"<none>:<none>"}
				}
				for _, t := range tags {
					repo, tag := splitTag(t)
					if len(args) == 1 && args[0] != repo && args[0] != t {
						continue
					}
					digest := "<none>"
					if len(img.RepoDigests) > 0 {
						_, digest, _ = strings.Cut(img.RepoDigests[0], "@")
					}
					id := maybeTrunc(img.ID, noTrunc)
					created := time.Unix(img.Created, 0)
					if err := p.row(imageRow{ID: id, Repository: repo, Tag: tag, Digest: digest, CreatedSince: ago(created),
						CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"), Size: size(img.Size)}); err != nil {
						return err
					}
				}
			}
			return p.flush()
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVar(&digests, "digests", false, "show digests")
	fl.StringVar(&format, "format", "", "format output using a Go template, or json")
	return cmd
}

// splitTag is docker's familiar repository and tag of a full reference.
func splitTag(ref string) (repo, tag string) {
	ref = strings.TrimPrefix(strings.TrimPrefix(ref, "docker.io/"), "library/")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

func (a *app) rmiCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "rmi [OPTIONS] IMAGE [IMAGE...]", Short: "Remove one or more images", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			failed := false
			for _, n := range args {
				res, err := c.ImageRemove(cmd.Context(), n, client.ImageRemoveOptions{Force: force})
				if err != nil {
					fmt.Fprintln(a.err, errorText(err))
					failed = true
					continue
				}
				for _, d := range res.Items {
					if d.Untagged != "" {
						fmt.Fprintln(a.out, "Untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintln(a.out, "Deleted:", d.Deleted)
					}
				}
			}
			if failed {
				return ExitError{Code: 1}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	return cmd
}

func (a *app) tagCmd() *cobra.Command {
	return &cobra.Command{
		Use: "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		}),
	}
}
