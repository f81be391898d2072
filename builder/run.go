package builder

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/sandbox"
)

// run is RUN: the command in a container of the stage's image (its env,
// build args, working directory and user), whose changes become a layer.
func (b *Builder) run(ctx context.Context, s *stage, cmd *instructions.RunCommand, o Options) error {
	args := s.withShell(cmd.ShellDependantCmdLine)
	createdBy := strings.Join(args, " ")
	inputs := strings.Join(kvs(s.args), "\n") // build args are the command's environment
	if !o.NoCache {
		if id, ok := b.cached(cacheKey(s, createdBy, inputs)); ok {
			s.imageID = id
			fmt.Fprintln(o.Out, " ---> Using cache")
			return nil
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "build-" + hex.EncodeToString(rnd[:])
	logDir, err := os.MkdirTemp("", "berth-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logDir)
	ctx2 := context.WithoutCancel(ctx) // what is made below is always removed
	pod, err := b.containers.RunPod(ctx2, sandbox.Request{Name: name, Namespace: Owner, UID: name, Owner: Owner, LogDirectory: logDir})
	if err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	defer func() {
		if err := b.containers.RemovePod(ctx2, pod.ID); err != nil {
			b.log.Warn("build: remove a RUN step's pod", "pod", pod.ID, "error", err)
		}
	}()
	env := append(kvs(s.args), s.config.Env...) // the image's variables win over build args
	rec, err := b.containers.Create(ctx2, containers.CreateRequest{SandboxID: pod.ID, Name: "run", Image: s.imageID, LogPath: "run.log",
		Container: oci.ContainerConfig{Command: args, Env: env, WorkingDir: s.config.WorkingDir, Username: s.config.User, Seccomp: "runtime/default"}})
	if err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	fmt.Fprintf(o.Out, " ---> Running in %s\n", short(rec.ID))
	ev, stop := b.containers.Subscribe()
	defer stop()
	if err := b.containers.Start(ctx2, rec.ID); err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	code, err := b.waitExit(ctx, ev, rec.ID)
	copyLog(o, filepath.Join(logDir, "run.log"))
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("The command '%s' returned a non-zero code: %d: %w", createdBy, code, errdefs.ErrInvalidArgument)
	}
	cfg := s.config
	img, err := b.containers.Commit(ctx2, rec.ID, images.CommitOptions{CreatedBy: createdBy, Config: func(c *configT) error { *c = cfg; return nil }})
	if err != nil {
		return fmt.Errorf("RUN: commit: %w", err)
	}
	b.remember(cacheKey(s, createdBy, inputs), img.ID)
	s.imageID = img.ID
	return nil
}

// waitExit waits for the container to exit (or ctx to end: then it is stopped).
func (b *Builder) waitExit(ctx context.Context, ev <-chan containers.Event, id string) (int32, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rec, err := b.containers.Get(id)
		if err != nil {
			return 0, err
		}
		if rec.State == store.ContainerExited {
			return rec.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			_ = b.containers.Stop(context.WithoutCancel(ctx), id, 0)
			return 0, ctx.Err()
		case <-ev:
		case <-tick.C:
		}
	}
}

// copyLog writes a step's output (its CRI log) to the build's.
func copyLog(o Options, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var partial bytes.Buffer
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) < 4 {
			continue
		}
		partial.WriteString(parts[3])
		if parts[2] == "P" {
			continue
		}
		fmt.Fprintln(o.Out, partial.String())
		partial.Reset()
	}
}
