package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
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
	forker *forkThread
}

// forkThread starts processes from one OS thread that lives as long as
// berthd. PDEATHSIG fires when the thread that forked a child ends, not
// the process, and Go ends a thread whose goroutine exits locked to it, as
// berthd's namespace work does (pinning a pod's namespaces leaves its
// thread in them): plugins forked from such a thread were killed mid-ADD
// under load.
type forkThread struct{ reqs chan func() }

func newForkThread() *forkThread {
	t := &forkThread{reqs: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread stays while berthd runs
		for f := range t.reqs {
			f()
		}
	}()
	return t
}

// start starts c from the thread; it returns when c has started.
func (t *forkThread) start(c *exec.Cmd) error {
	errc := make(chan error, 1)
	t.reqs <- func() { errc <- c.Start() }
	return <-errc
}

func (e *pluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, pluginPath)
	c.Env, c.Stdin, c.Stdout, c.Stderr = environ, bytes.NewReader(stdinData), &stdout, &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := e.forker.start(c)
	if err == nil {
		err = c.Wait()
	}
	if err != nil {
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
