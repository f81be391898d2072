package spawn

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sh runs a shell script through s.
func sh(t *testing.T, s *Spawner, script string, in string) (string, string, error) {
	t.Helper()
	out, errOut, err := s.Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", script}}, []byte(in))
	return string(out), string(errOut), err
}

func TestRun(t *testing.T) {
	for name, s := range map[string]*Spawner{"thread": New(), "nil": nil} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := sh(t, s, "cat; echo oops >&2", "hello\n")
			if err != nil || out != "hello\n" || errOut != "oops\n" {
				t.Fatalf("got %q, %q, %v; want hello, oops, nil", out, errOut, err)
			}
			// The child's pipes block, as a child expects of its stdio
			// (Go makes its own ends non-blocking): O_NONBLOCK is 04000.
			out, _, err = sh(t, s, "for fd in 0 1 2; do sed -n 's/^flags:\t*//p' /proc/self/fdinfo/$fd; done", "")
			if len(strings.Fields(out)) != 3 {
				t.Fatalf("the child's stdio flags: %q, %v", out, err)
			}
			for _, f := range strings.Fields(out) {
				if v, perr := strconv.ParseUint(f, 8, 32); err != nil || perr != nil || v&0o4000 != 0 {
					t.Fatalf("the child's stdio flags %q (%v): want blocking", out, err)
				}
			}
			_, _, err = sh(t, s, "exit 3", "")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("exit 3: got %v, want an ExitError of 3", err)
			}
			_, err = s.Start(Cmd{Path: "/no/such/binary", Args: []string{"x"}})
			if err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
				t.Fatalf("missing binary: got %v, want an error naming it", err)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	s := New()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := s.Run(ctx, Cmd{Path: "/bin/sleep", Args: []string{"sleep", "30"}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("killed after %v", d)
	}
}

// TestTableOfItsOwn checks what the spawner is for: the files berthd opens
// are not in the table its children are forked from, and the files it had
// when the spawner started are not kept open by it.
func TestTableOfItsOwn(t *testing.T) {
	before, keep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	s := New()
	var tid int
	done := make(chan struct{})
	s.reqs <- func() { tid = unix.Gettid(); close(done) }
	<-done
	if s.self < 0 {
		t.Skip("no table of its own here (unshare(CLONE_FILES) or pidfd_getfd refused): the spawner forks from the process's")
	}
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	for range 200 {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
	}
	ents, err := os.ReadDir("/proc/self/task/" + strconv.Itoa(tid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 20 {
		t.Fatalf("the spawner's thread has %d files open, want a few", len(ents))
	}
	// Its copy of the table at its start did not keep keep's file open:
	// closing berthd's end ends the pipe.
	keep.Close()
	before.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := before.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the writer closed: %d, %v; want EOF", n, err)
	}
	// And a child still gets the files it is given, copied from the
	// process's table: a temporary file opened after the spawner.
	tmp, err := os.CreateTemp(t.TempDir(), "given")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	p, err := s.Start(Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "echo given >&3"}, Files: []*os.File{nil, nil, nil, tmp}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Fatalf("child: %v, %v", st, err)
	}
	if b, err := os.ReadFile(tmp.Name()); err != nil || string(b) != "given\n" {
		t.Fatalf("the child wrote %q (%v) to its descriptor 3, want given", b, err)
	}
}
