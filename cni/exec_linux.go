package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"syscall"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-runtime/berth/internal/spawn"
)

// pluginExec runs plugins as libcni's RawExec does, but they die with
// berthd: a plugin left running after a crash would race the DEL that the
// start-up sweep runs for the same pod, and could finish its ADD after it.
// The spawner's thread lasts as long as berthd, as PDEATHSIG needs (it
// fires when the forking thread ends), and forks without berthd's many
// open files.
type pluginExec struct {
	invoke.RawExec
	version.PluginDecoder
	spawner *spawn.Spawner
}

func (e *pluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	stdout, stderr, err := e.spawner.Run(ctx, spawn.Cmd{
		Path: pluginPath, Args: []string{pluginPath}, Env: environ,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}, stdinData)
	if err != nil {
		// A plugin reports its error as a CNI error object on stdout.
		var perr types.Error
		if json.Unmarshal(stdout, &perr) == nil && perr.Msg != "" {
			return nil, &perr
		}
		if len(stderr) > 0 {
			return nil, fmt.Errorf("%s: %w: %s", pluginPath, err, bytes.TrimSpace(stderr))
		}
		return nil, fmt.Errorf("%s: %w", pluginPath, err)
	}
	return stdout, nil
}
