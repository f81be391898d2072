package linux

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order, each with the container's state on stdin,
// stopping at the first failure (which names the hook).
func runHooks(kind string, hooks []specs.Hook, st specs.State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		ctx := context.Background()
		var cancel context.CancelFunc = func() {}
		if h.Timeout != nil && *h.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		}
		cmd := exec.CommandContext(ctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(b)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		switch {
		case timedOut:
			return fmt.Errorf("hooks.%s[%d] %s: timed out after %ds", kind, i, h.Path, *h.Timeout)
		case err != nil:
			return fmt.Errorf("hooks.%s[%d] %s: %v: %s", kind, i, h.Path, err, bytes.TrimSpace(out.Bytes()))
		}
	}
	return nil
}

func hookState(id, bundle string, pid int, status specs.ContainerState, annotations map[string]string) specs.State {
	return specs.State{Version: specs.Version, ID: id, Status: status, Pid: pid, Bundle: bundle, Annotations: annotations}
}
