package linux

import (
	"fmt"
	"net"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleEnv names the fd of the connected console socket in the init.
const consoleEnv = "_BERTH_CONSOLE"

// dialConsole connects to the --console-socket; the init gets the connection.
func dialConsole(path string) (*os.File, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	defer c.Close()
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	return f, nil
}

// setupTerminal makes a pty in the container's devpts, sends its master over
// the console socket (as runc does, with the pty's name as payload), and
// makes its slave our controlling terminal and stdio.
func setupTerminal(console *os.File, size *specs.Box) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process.terminal: open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("process.terminal: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("process.terminal: pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	slave, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process.terminal: open %s: %w", name, err)
	}
	defer unix.Close(slave)
	if size != nil {
		_ = unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	// /dev/console is the terminal too, as in runc (after pivot_root: the
	// tmpfs /dev is the container's).
	if err := mkMountpoint("/dev/console", false); err == nil {
		_ = unix.Mount(name, "/dev/console", "", unix.MS_BIND, "")
	}
	if err := unix.Sendmsg(int(console.Fd()), []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("process.terminal: send pty master: %w", err)
	}
	console.Close()
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("process.terminal: setsid: %w", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("process.terminal: set controlling tty: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("process.terminal: stdio: %w", err)
		}
	}
	return nil
}
