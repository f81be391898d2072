package shim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// execStream runs req.Args in the container wired to the connection's frames.
// The runtime runs it detached (runc insists, with a terminal), so the
// process becomes our child and we wait for it ourselves.
func (s *server) execStream(ctx context.Context, in io.Reader, fw *frameWriter, req Request) error {
	select {
	case <-s.exited:
		return errors.New("exec: the container is not running")
	default:
	}
	dir, procFile, pidFile, err := s.prepareExec(req)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if !req.Tty {
		return s.execStreamPipes(ctx, in, fw, req, procFile, pidFile)
	}
	args := []string{"--root", s.rt.Root, "exec", "--detach", "--process", procFile, "--pid-file", pidFile}
	cmd := exec.CommandContext(ctx, s.rt.Path)
	var (
		master                *os.File
		stdinW                *os.File
		outputs               []*os.File // read ends, closed after draining
		console               *consoleListener
		closeAfterStart       []*os.File
		stdoutType, errorType = byte(frameStdout), byte(frameStderr)
	)
	if req.Tty {
		if console, err = newConsoleListener(s.dir); err != nil {
			return err
		}
		defer console.close()
		args = append(args, "--tty", "--console-socket", console.path())
	} else {
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = outW, errW
		outputs = []*os.File{outR, errR}
		closeAfterStart = append(closeAfterStart, outW, errW)
		if req.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return err
			}
			cmd.Stdin, stdinW = inR, inW
			closeAfterStart = append(closeAfterStart, inR)
		}
	}
	cmd.Args = append([]string{s.rt.Path}, append(args, s.cfg.ID)...)

	var masterErr error
	got := make(chan struct{})
	if console != nil {
		go func() { master, masterErr = console.receive(); close(got) }()
	}
	s.reaper.hold()
	var stderr strings.Builder
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	runErr := s.reaper.run(cmd)
	pid := 0
	if b, err := os.ReadFile(pidFile); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid > 0 {
		s.reaper.own(pid)
	}
	s.reaper.release()
	for _, f := range closeAfterStart {
		f.Close()
	}
	if runErr != nil || pid <= 0 {
		for _, f := range outputs {
			f.Close()
		}
		return fmt.Errorf("exec %s: %v %s", req.Args[0], runErr, strings.TrimSpace(stderr.String()))
	}
	defer s.reaper.disown(pid)
	if console != nil {
		<-got
		if masterErr != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return masterErr
		}
		defer master.Close()
		outputs = []*os.File{master}
	}

	// Output: every stream drained before the exit frame goes out.
	var drained sync.WaitGroup
	for i, f := range outputs {
		typ := stdoutType
		if i == 1 {
			typ = errorType
		}
		drained.Add(1)
		go func() {
			defer drained.Done()
			_, _ = io.Copy(streamWriter{fw, typ}, f) // a pty master ends with EIO
			if master == nil {
				f.Close()
			}
		}()
	}
	// Input: stdin, its end, and resizes, until the connection ends.
	go func() {
		for {
			typ, p, err := readFrame(in)
			if err != nil {
				if stdinW != nil {
					stdinW.Close()
				}
				return
			}
			switch typ {
			case frameStdin:
				switch {
				case master != nil:
					_, _ = master.Write(p)
				case stdinW != nil:
					_, _ = stdinW.Write(p)
				}
			case frameStdinClose:
				if stdinW != nil {
					stdinW.Close()
				} else if master != nil {
					_, _ = master.Write([]byte{4}) // ^D: end of input on a terminal
				}
			case frameResize:
				if sz, err := parseResize(p); err == nil && master != nil {
					_ = resizePty(master, sz)
				}
			}
		}
	}()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	drained.Wait()
	code := exitCode(ws)
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(code))
	return fw.write(frameExit, p[:])
}

// execStreamPipes is execStream without a terminal: the runtime's exec runs
// in the foreground, as ExecSync's does, its stdout and stderr framed as
// they come and its exit code the process's, with no detach, pid file
// read-back or wait on a pid the shim did not fork.
func (s *server) execStreamPipes(ctx context.Context, in io.Reader, fw *frameWriter, req Request, procFile, pidFile string) error {
	cmd := exec.Command(s.rt.Path, "--root", s.rt.Root, "exec", "--process", procFile, "--pid-file", pidFile, s.cfg.ID)
	var runtimeErr boundedBuffer // what the runtime says if the process never starts
	cmd.Stdout = streamWriter{fw, frameStdout}
	cmd.Stderr = io.MultiWriter(streamWriter{fw, frameStderr}, &runtimeErr)
	var stdinW *os.File
	if req.Stdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return err
		}
		defer inR.Close()
		cmd.Stdin, stdinW = inR, inW
	}
	if err := s.reaper.start(cmd); err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return fmt.Errorf("exec %s: %w", req.Args[0], err)
	}
	// Input: stdin and its end, until the connection ends.
	go func() {
		for {
			typ, p, err := readFrame(in)
			if err != nil || typ == frameStdinClose {
				if stdinW != nil {
					stdinW.Close()
				}
				if err != nil {
					return
				}
				continue
			}
			if typ == frameStdin && stdinW != nil {
				_, _ = stdinW.Write(p)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- s.reaper.wait(cmd) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		killExec(pidFile, cmd)
		<-done
		return ctx.Err()
	}
	code := int32(0)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = exitErrorCode(ee)
	default:
		return fmt.Errorf("exec %s: %w", req.Args[0], err)
	}
	if _, statErr := os.Stat(pidFile); statErr != nil && code != 0 {
		return fmt.Errorf("exec %s: %s", req.Args[0], strings.TrimSpace(string(runtimeErr.Bytes())))
	}
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(code))
	return fw.write(frameExit, p[:])
}
