package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// pluginExec runs plugins as libcni's RawExec does, but they die with
// berthd: a plugin left running after a crash would race the DEL that the
// start-up sweep runs for the same pod, and could finish its ADD after it.
type pluginExec struct {
	invoke.RawExec
	version.PluginDecoder
}

func (e *pluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, pluginPath)
	c.Env, c.Stdin, c.Stdout, c.Stderr = environ, bytes.NewReader(stdinData), &stdout, &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Run(); err != nil {
		// A plugin reports its error as a CNI error object on stdout.
		var perr types.Error
		if json.Unmarshal(stdout.Bytes(), &perr) == nil && perr.Msg != "" {
			return nil, &perr
		}
		if stderr.Len() > 0 {
			return nil, fmt.Errorf("%s: %w: %s", pluginPath, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil, fmt.Errorf("%s: %w", pluginPath, err)
	}
	return stdout.Bytes(), nil
}
