package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// DefaultHost is berthd's Docker API socket; DOCKER_HOST or --host change it.
const DefaultHost = "unix:///run/berth/docker.sock"

// ExitError ends the program with Code (the container's own exit code, or
// docker's 125/126/127), printing msg if it has one.
type ExitError struct {
	Code int
	msg  string
}

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// app is what every command shares: the streams and the API client.
type app struct {
	host      string
	context   string
	criSocket string
	in        io.Reader
	out, err  io.Writer
	api       *client.Client
}

// client connects on first use, negotiating the API version.
func (a *app) client() (*client.Client, error) {
	if a.api != nil {
		return a.api, nil
	}
	host, err := a.resolveHost()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", host, err)
	}
	a.api = c
	return c, nil
}

// resolveHost finds the daemon as the docker CLI does: --host, then
// DOCKER_HOST, then the context named by --context, DOCKER_CONTEXT or the
// config's currentContext (its docker endpoint), then berthd's socket.
func (a *app) resolveHost() (string, error) {
	if a.host != "" {
		return a.host, nil
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h, nil
	}
	name := a.context
	if name == "" {
		name = os.Getenv("DOCKER_CONTEXT")
	}
	if name == "" {
		name = dockerconfig.LoadDefaultConfigFile(a.err).CurrentContext
	}
	if name == "" || name == "default" {
		return DefaultHost, nil
	}
	// The docker CLI keeps a context's metadata under contexts/meta/<sha256 of its name>/meta.json.
	sum := sha256.Sum256([]byte(name))
	b, err := os.ReadFile(filepath.Join(dockerconfig.Dir(), "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json"))
	if err != nil {
		return "", fmt.Errorf("context %q: %w", name, err)
	}
	var meta struct {
		Endpoints map[string]struct{ Host string }
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", fmt.Errorf("context %q: %w", name, err)
	}
	if h := meta.Endpoints["docker"].Host; h != "" {
		return h, nil
	}
	return "", fmt.Errorf("context %q has no docker endpoint", name)
}

// NewCommand is the `berth` command with every verb.
func NewCommand(version string, in io.Reader, out, errOut io.Writer) *cobra.Command {
	a := &app{in: in, out: out, err: errOut}
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "A docker-compatible command line for Berth",
		Long:          "berth runs and manages containers and images through berthd's Docker Engine API\n(DOCKER_HOST, --host, or " + DefaultHost + ").",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVarP(&a.host, "host", "H", "", "daemon socket to connect to (default $DOCKER_HOST or "+DefaultHost+")")
	root.PersistentFlags().StringVar(&a.context, "context", "", "name of the docker context to use (as the docker CLI keeps them)")
	root.PersistentFlags().StringVar(&a.criSocket, "cri-socket", "unix:///run/berth/berth.sock", "berthd's CRI socket (berth pods, ps --all-namespaces)")
	root.AddCommand(
		a.runCmd(), a.createCmd(), a.startCmd(), a.stopCmd(), a.killCmd(), a.restartCmd(), a.rmCmd(), a.psCmd(),
		a.logsCmd(), a.execCmd(), a.inspectCmd(), a.waitCmd(), a.renameCmd(),
		a.pullCmd(), a.imagesCmd(), a.rmiCmd(), a.tagCmd(),
		a.volumeCmd(), a.networkCmd(), a.versionCmd(version), a.infoCmd(), a.podsCmd(),
		a.pauseCmd(true), a.pauseCmd(false), a.topCmd(), a.diffCmd(), a.cpCmd(), a.commitCmd(), a.historyCmd(),
		a.saveCmd(), a.loadCmd(), a.exportCmd(), a.buildCmd(), a.loginCmd(), a.logoutCmd(), a.pushCmd(),
		a.containerCmd(), a.imageCmd(), a.statsCmd(), a.eventsCmd(), a.attachCmd(), a.updateCmd(), a.systemCmd(), a.portCmd(),
	)
	return root
}

// Execute runs berth with args and returns the process's exit code, as
// docker's: 0, the container's code, 125 when the daemon or the command
// line failed.
func Execute(ctx context.Context, version string, args []string) int {
	cmd := NewCommand(version, os.Stdin, os.Stdout, os.Stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	var exit ExitError
	var coded codedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.msg != "" {
			fmt.Fprintln(os.Stderr, exit.msg)
		}
		return exit.Code
	case errors.As(err, &coded):
		fmt.Fprintln(os.Stderr, "berth: "+errorText(coded.error)+".")
		return coded.code
	}
	fmt.Fprintln(os.Stderr, errorText(err))
	if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "unknown flag") {
		fmt.Fprintln(os.Stderr, "See 'berth --help'.")
	}
	return 125
}

// errorText is what docker prints for an error: the daemon's own words.
func errorText(err error) string {
	msg := err.Error()
	if cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) || cerrdefs.IsInvalidArgument(err) || cerrdefs.IsUnavailable(err) {
		if !strings.HasPrefix(msg, "Error") {
			return "Error response from daemon: " + strings.TrimPrefix(msg, "Error response from daemon: ")
		}
	}
	if strings.HasPrefix(msg, "Error") {
		return msg
	}
	return "Error: " + msg
}

// withClient is a command's RunE for fn, given the API client.
func (a *app) withClient(fn func(cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return fn(cmd, args, c)
	}
}
