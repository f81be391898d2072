package testutil

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ConsoleSocket listens on a unix socket for a runtime's --console-socket
// and returns its path and a function that waits for the pty master.
func ConsoleSocket(t testing.TB) (string, func() (*os.File, error)) {
	t.Helper()
	dir, err := os.MkdirTemp("", "console-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "c.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path, func() (*os.File, error) {
		c, err := ln.AcceptUnix()
		if err != nil {
			return nil, err
		}
		defer c.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return nil, err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return nil, fmt.Errorf("no pty master in the message (%v)", err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return nil, fmt.Errorf("no pty master in the message (%v)", err)
		}
		return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
	}
}
