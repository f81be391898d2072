package shim

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// consoleListener is a --console-socket for a runtime: it receives the pty
// master the runtime makes for a process with a terminal. It lives in a
// directory of its own under the shim's state directory, which goes with
// the container even if the shim dies; or under /tmp where that path is
// too long for sun_path (108 bytes).
type consoleListener struct {
	dir string
	ln  *net.UnixListener
}

func newConsoleListener(stateDir string) (*consoleListener, error) {
	parent := stateDir
	if len(parent)+len("/berth-tty-1234567890/c.sock") >= 108 {
		parent = ""
	}
	dir, err := os.MkdirTemp(parent, "berth-tty-")
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "c.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleListener{dir: dir, ln: ln}, nil
}

func (c *consoleListener) path() string { return filepath.Join(c.dir, "c.sock") }

// receive waits for the runtime's connection and returns the pty master.
func (c *consoleListener) receive() (*os.File, error) {
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: no pty master received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("console socket: no pty master received")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

func (c *consoleListener) close() {
	c.ln.Close()
	os.RemoveAll(c.dir)
}

func resizePty(master *os.File, s Size) error {
	return unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: s.Height, Col: s.Width})
}
