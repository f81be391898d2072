package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/go-archive"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"
)

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
