package linux

import (
	"errors"
	"os/exec"
	"testing"

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
	if err := signalProcess(cmd.Process.Pid, start+1, unix.SIGKILL); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("a pid whose start time differs: %v, want ESRCH", err)
	}
	if !processAlive(cmd.Process.Pid, start) {
		t.Fatal("the process was signalled under a start time not its own")
	}
	if err := signalProcess(cmd.Process.Pid, start, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if processAlive(cmd.Process.Pid, start) {
		t.Fatal("not killed")
	}
}
