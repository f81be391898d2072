package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/go-archive"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"
)

func (a *app) pauseCmd(pause bool) *cobra.Command {
	use, short := "pause", "Pause all processes within one or more containers"
	if !pause {
		use, short = "unpause", "Unpause all processes within one or more containers"
	}
	return &cobra.Command{
		Use: use + " CONTAINER [CONTAINER...]", Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				var err error
				if pause {
					_, err = c.ContainerPause(ctx, n, client.ContainerPauseOptions{})
				} else {
					_, err = c.ContainerUnpause(ctx, n, client.ContainerUnpauseOptions{})
				}
				return err
			})
		},
	}
}

func (a *app) topCmd() *cobra.Command {
	return &cobra.Command{
		Use: "top CONTAINER [ps OPTIONS]", Short: "Display the running processes of a container", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		}),
	}
}

func (a *app) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use: "diff CONTAINER", Short: "Inspect changes to files or directories on a container's filesystem", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				fmt.Fprintf(a.out, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		}),
	}
}

// cpCmd is docker cp in both directions, with moby's archive code doing the
// renaming docker cp does (a file to a new name, a directory into one).
func (a *app) cpCmd() *cobra.Command {
	return &cobra.Command{
		Use: "cp CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp SRC_PATH|- CONTAINER:DEST_PATH", Short: "Copy files/folders between a container and the local filesystem", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			ctx := cmd.Context()
			if ctr, src, ok := strings.Cut(args[0], ":"); ok && !strings.Contains(ctr, "/") {
				res, err := c.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
				if err != nil {
					return err
				}
				defer res.Content.Close()
				if args[1] == "-" {
					_, err = io.Copy(a.out, res.Content)
					return err
				}
				info := archive.CopyInfo{Path: src, Exists: true, IsDir: res.Stat.Mode.IsDir(), RebaseName: ""}
				return archive.CopyTo(res.Content, info, args[1])
			}
			ctr, dst, ok := strings.Cut(args[1], ":")
			if !ok {
				return fmt.Errorf("copying between two local paths is not supported: name a container in one of them (CONTAINER:PATH)")
			}
			srcInfo, err := archive.CopyInfoSourcePath(args[0], false)
			if err != nil {
				return err
			}
			content, err := archive.TarResource(srcInfo)
			if err != nil {
				return err
			}
			defer content.Close()
			dstInfo := archive.CopyInfo{Path: dst}
			if st, err := c.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst}); err == nil {
				dstInfo.Exists, dstInfo.IsDir = true, st.Stat.Mode.IsDir()
			}
			dir, prepared, err := archive.PrepareArchiveCopy(content, srcInfo, dstInfo)
			if err != nil {
				return err
			}
			defer prepared.Close()
			_, err = c.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dir, Content: prepared})
			return err
		}),
	}
}

func (a *app) commitCmd() *cobra.Command {
	var o client.ContainerCommitOptions
	cmd := &cobra.Command{
		Use: "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", Short: "Create a new image from a container's changes", Args: cobra.RangeArgs(1, 2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if len(args) == 2 {
				o.Reference = args[1]
			}
			res, err := c.ContainerCommit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, res.ID)
			return nil
		}),
	}
	cmd.Flags().StringArrayVarP(&o.Changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&o.Comment, "message", "m", "", "commit message")
	cmd.Flags().StringVarP(&o.Author, "author", "a", "", "author")
	return cmd
}

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

func (a *app) exportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "export [OPTIONS] CONTAINER", Short: "Export a container's filesystem as a tar archive", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			rc, err := c.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
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

// writeOutput copies r to the file named, or to out ("" or "-").
func writeOutput(r io.Reader, name string, out io.Writer) error {
	if name == "" || name == "-" {
		_, err := io.Copy(out, r)
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

// buildCmd is docker build with the classic builder: the context directory
// as a tar (less what .dockerignore names), the daemon's progress printed.
func (a *app) buildCmd() *cobra.Command {
	var o client.ImageBuildOptions
	var buildArgs []string
	cmd := &cobra.Command{
		Use: "build [OPTIONS] PATH", Short: "Build an image from a Dockerfile", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			dir := args[0]
			var excludes []string
			if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
				excludes, err = ignorefile.ReadAll(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("read .dockerignore: %w", err)
				}
			}
			tar, err := archive.TarWithOptions(dir, &archive.TarOptions{ExcludePatterns: excludes})
			if err != nil {
				return fmt.Errorf("the build context %s: %w", dir, err)
			}
			defer tar.Close()
			o.BuildArgs = map[string]*string{}
			for _, ba := range buildArgs {
				k, v, ok := strings.Cut(ba, "=")
				if !ok {
					env, set := os.LookupEnv(k)
					if !set {
						continue
					}
					v = env
				}
				o.BuildArgs[k] = &v
			}
			o.Version = build.BuilderV1
			o.Remove = true
			res, err := c.ImageBuild(cmd.Context(), tar, o)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			return a.printStream(res.Body)
		}),
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.Tags, "tag", "t", nil, "name and optionally a tag in the name:tag format")
	fl.StringVarP(&o.Dockerfile, "file", "f", "", "name of the Dockerfile (default: PATH/Dockerfile)")
	fl.StringArrayVar(&buildArgs, "build-arg", nil, "set build-time variables")
	fl.StringVar(&o.Target, "target", "", "set the target build stage to build")
	fl.BoolVar(&o.NoCache, "no-cache", false, "do not use cache when building the image")
	fl.BoolVarP(&o.SuppressOutput, "quiet", "q", false, "suppress the build output and print image ID on success")
	return cmd
}
