package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/moby/go-archive"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

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
