package linux

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSignalProcess: a process whose start time is not the one recorded
// (its pid reused) is not signalled; the recorded one is.
func TestSignalProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	start, _, err := processStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := SignalProcess(cmd.Process.Pid, start+1, unix.SIGKILL); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("a pid whose start time differs: %v, want ESRCH", err)
	}
	if !processAlive(cmd.Process.Pid, start) {
		t.Fatal("the process was signalled under a start time not its own")
	}
	if err := SignalProcess(cmd.Process.Pid, start, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if processAlive(cmd.Process.Pid, start) {
		t.Fatal("not killed")
	}
}

// TestWaitForwarding: a signal to the waiter reaches the child while it
// runs; once the child is reaped, a signal is no longer forwarded (its pid
// may be another process's by then) and the exit status is the shell's.
func TestWaitForwarding(t *testing.T) {
	// Our own handler too, so that a SIGUSR1 not forwarded does not end the test.
	own := make(chan os.Signal, 4)
	signal.Notify(own, unix.SIGUSR1)
	t.Cleanup(func() { signal.Stop(own) })

	cmd := exec.Command("sh", "-c", `trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	if _, err := out.Read(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = unix.Kill(os.Getpid(), unix.SIGUSR1)
	}()
	status, err := WaitForwarding(cmd.Process.Pid, unix.SIGUSR1)
	if err != nil || status != 7 {
		t.Fatalf("status %d, %v; want 7 (the trap's exit)", status, err)
	}

	// After the reap: a new child under test, signalled by nothing.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	_ = unix.Kill(os.Getpid(), unix.SIGUSR1)
	time.Sleep(50 * time.Millisecond)
	if err := sleeper.Process.Signal(unix.Signal(0)); err != nil {
		t.Fatalf("a process started after the wait was signalled: %v", err)
	}

	killed := exec.Command("sleep", "60")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	_ = killed.Process.Kill()
	if status, err := WaitForwarding(killed.Process.Pid); err != nil || status != 128+9 {
		t.Fatalf("killed child: status %d, %v; want 137", status, err)
	}
}

// TestSignalChildOf: a process is signalled only while its parent is one named.
func TestSignalChildOf(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := SignalChildOf(cmd.Process.Pid, unix.SIGKILL, 1); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("not init's child: %v, want ESRCH", err)
	}
	if err := cmd.Process.Signal(unix.Signal(0)); err != nil {
		t.Fatal("signalled though its parent was not named")
	}
	if err := SignalChildOf(cmd.Process.Pid, unix.SIGKILL, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("not killed")
	}
}
