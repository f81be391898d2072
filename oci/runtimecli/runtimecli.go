// Package runtimecli drives an OCI runtime binary with runc's command line:
// berth-runtime, runc and crun alike. The shim is its only user.
package runtimecli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is one runtime binary with its state root.
type Runtime struct {
	Path string // the binary
	Root string // --root
	// Log is the runtime's --log file (JSON), read back to explain a failure.
	Log string
	// Run runs a command to completion; nil means cmd.Run. A subreaper that
	// reaps orphans hooks it to know which children are not orphans.
	Run func(cmd *exec.Cmd) error
	// Env is added to the runtime's environment (KEY=VALUE).
	Env []string
}

func (r Runtime) exec(cmd *exec.Cmd) error {
	if r.Run != nil {
		return r.Run(cmd)
	}
	return cmd.Run()
}

func (r Runtime) command(ctx context.Context, args ...string) *exec.Cmd {
	g := []string{"--root", r.Root}
	if r.Log != "" {
		g = append(g, "--log", r.Log, "--log-format", "json")
	}
	cmd := exec.CommandContext(ctx, r.Path, append(g, args...)...)
	if len(r.Env) > 0 {
		cmd.Env = append(os.Environ(), r.Env...)
	}
	return cmd
}

// run runs a command whose stdio is ours to capture.
func (r Runtime) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := r.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := r.exec(cmd); err != nil {
		return nil, r.explain(args[0], err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// explain builds an error from what the runtime said: its stderr, or the
// last error in its log when its stderr belonged to the container.
func (r Runtime) explain(op string, err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	if l := r.lastLogError(); l != "" {
		msg = l
	}
	if msg == "" {
		return fmt.Errorf("%s %s: %w", r.Path, op, err)
	}
	return fmt.Errorf("%s %s: %s", r.Path, op, msg)
}

// lastLogError returns the msg of the last error-level line in the JSON log.
func (r Runtime) lastLogError() string {
	if r.Log == "" {
		return ""
	}
	f, err := os.Open(r.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && strings.EqualFold(l.Level, "error") {
			last = l.Msg
		}
	}
	return last
}

// Create runs "create"; stdio become the container's stdin, stdout and
// stderr, unless consoleSocket is set (process.terminal), which receives the
// container's pty master.
func (r Runtime) Create(ctx context.Context, id, bundle, pidFile, consoleSocket string, stdin, stdout, stderr *os.File) error {
	args := []string{"create", "--bundle", bundle, "--pid-file", pidFile}
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	cmd := r.command(ctx, append(args, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := r.exec(cmd); err != nil {
		return r.explain("create", err, "")
	}
	return nil
}

// Start runs "start".
func (r Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, "start", id)
	return err
}

// Kill sends sig to the init, or with all to every process of the container.
func (r Runtime) Kill(ctx context.Context, id string, sig int, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, append(args, id, strconv.Itoa(sig))...)
	return err
}

// Delete runs "delete", with --force when asked.
func (r Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.run(ctx, append(args, id)...)
	return err
}

// State runs "state" and decodes its JSON.
func (r Runtime) State(ctx context.Context, id string) (specs.State, error) {
	var s specs.State
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return s, fmt.Errorf("%s state %s: %w", r.Path, id, err)
	}
	return s, nil
}

// Update changes a container's limits: resources is LinuxResources JSON.
func (r Runtime) Update(ctx context.Context, id string, resources []byte) error {
	cmd := r.command(ctx, "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(resources)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := r.exec(cmd); err != nil {
		return r.explain("update", err, stderr.String())
	}
	return nil
}

// Pause freezes the container; Resume thaws it.
func (r Runtime) Pause(ctx context.Context, id string) error {
	_, err := r.run(ctx, "pause", id)
	return err
}

// Resume thaws a paused container.
func (r Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.run(ctx, "resume", id)
	return err
}
