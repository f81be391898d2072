package cli

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace/noop"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

func (a *app) versionCmd(version string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "version [OPTIONS]", Short: "Show the berth and berthd version information", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := map[string]any{"Client": map[string]string{"Version": version, "GoVersion": runtime.Version(), "Os": runtime.GOOS, "Arch": runtime.GOARCH}}
			c, err := a.client()
			var srv client.ServerVersionResult
			if err == nil {
				srv, err = c.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			}
			if err == nil {
				info["Server"] = map[string]string{"Version": srv.Version, "APIVersion": srv.APIVersion, "MinAPIVersion": srv.MinAPIVersion,
					"Os": srv.Os, "Arch": srv.Arch}
			}
			if format != "" {
				p, perr := newPrinter(a.out, format, "", nil)
				if perr != nil {
					return perr
				}
				if perr := p.row(info); perr != nil {
					return perr
				}
				return err
			}
			fmt.Fprintf(a.out, "Client:\n Version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "\nServer: %s\n Engine:\n  Version:\t%s\n  API version:\t%s (minimum version %s)\n  OS/Arch:\t%s/%s\n",
				srv.Platform.Name, srv.Version, srv.APIVersion, srv.MinAPIVersion, srv.Os, srv.Arch)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func (a *app) infoCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "info [OPTIONS]", Short: "Display system-wide information", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return err
			}
			i := res.Info
			if format != "" {
				p, err := newPrinter(a.out, format, "", nil)
				if err != nil {
					return err
				}
				return p.row(i)
			}
			fmt.Fprintf(a.out, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n Server Version: %s\n Storage Driver: %s\n Cgroup Driver: %s\n Cgroup Version: %s\n Default Runtime: %s\n Kernel Version: %s\n Operating System: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n Docker Root Dir: %s\n",
				i.Containers, i.ContainersRunning, i.ContainersPaused, i.ContainersStopped, i.Images, i.ServerVersion, i.Driver, i.CgroupDriver,
				i.CgroupVersion, i.DefaultRuntime, i.KernelVersion, i.OperatingSystem, i.Architecture, i.NCPU, size(i.MemTotal), i.Name, i.DockerRootDir)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

// cri connects to berthd's CRI socket, for the node operator's read-only views.
func (a *app) cri(ctx context.Context) (interface {
	ListPodSandbox(context.Context, *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(context.Context, *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
}, error) {
	rs, err := remote.NewRemoteRuntimeService(ctx, a.criSocket, 10*time.Second, noop.NewTracerProvider(), false)
	if err != nil {
		return nil, fmt.Errorf("connect to the CRI at %s: %w", a.criSocket, err)
	}
	return rs, nil
}

func (a *app) podsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "pods", Short: "List the node's Kubernetes pods (read from the CRI; read-only)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := a.cri(cmd.Context())
			if err != nil {
				return err
			}
			pods, err := rs.ListPodSandbox(cmd.Context(), nil)
			if err != nil {
				return fmt.Errorf("list pods: %w", err)
			}
			tw := tabwriter.NewWriter(a.out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "POD ID\tCREATED\tSTATE\tNAME\tNAMESPACE\tATTEMPT")
			for _, p := range pods {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", shortID(p.Id), ago(time.Unix(0, p.CreatedAt)),
					strings.TrimPrefix(p.State.String(), "SANDBOX_"), p.Metadata.GetName(), p.Metadata.GetNamespace(), p.Metadata.GetAttempt())
			}
			return tw.Flush()
		},
	}
}

// listCRIContainers is the first part of `berth ps --all-namespaces`:
// Kubernetes' containers from the CRI (docker ps's table follows).
func (a *app) listCRIContainers(ctx context.Context) error {
	rs, err := a.cri(ctx)
	if err != nil {
		return err
	}
	ctrs, err := rs.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	pods, _ := rs.ListPodSandbox(ctx, nil)
	podName := map[string]string{}
	for _, p := range pods {
		podName[p.Id] = p.Metadata.GetNamespace() + "/" + p.Metadata.GetName()
	}
	tw := tabwriter.NewWriter(a.out, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCREATED\tSTATE\tNAME\tPOD")
	for _, c := range ctrs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(c.Id), c.Image.GetImage(), ago(time.Unix(0, c.CreatedAt)),
			strings.TrimPrefix(c.State.String(), "CONTAINER_"), c.Metadata.GetName(), podName[c.PodSandboxId])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.out)
	return err
}

// systemCmd holds docker system df.
func (a *app) systemCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "system COMMAND", Short: "Manage the daemon"}
	df := &cobra.Command{
		Use: "df", Short: "Show disk usage", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			du, err := c.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			row := func(kind string, total, active, size_, reclaimable int64) {
				pct := int64(0)
				if size_ > 0 {
					pct = reclaimable * 100 / size_
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s (%d%%)\n", kind, total, active, size(size_), size(reclaimable), pct)
			}
			row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable)
			row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable)
			row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable)
			row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable)
			return tw.Flush()
		}),
	}
	cmd.AddCommand(df)
	return cmd
}
