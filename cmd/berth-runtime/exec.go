package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/linux/nsenter"
	"github.com/berth-runtime/berth/oci/specjson"
)

func execCmd(g *globals) *cobra.Command {
	var (
		processFile, pidFile, consoleSocket, cwd, user string
		env, caps                                      []string
		gids                                           []uint32
		tty, detach, noNewPrivs                        bool
		preserveFds                                    int
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARG...]]",
		Short: "Run a process in a running container",
		Long: `Run a process in a running container: COMMAND with the container's own
environment, user, capabilities and working directory (each overridable), or
the process described by --process.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if preserveFds > 0 {
				return errors.New("--preserve-fds is not supported yet")
			}
			if tty && consoleSocket == "" {
				return errors.New("--tty needs --console-socket to send the pty master to")
			}
			id := args[0]
			p, err := execProcess(g.root, id, processFile, args[1:], cwd, user, env, caps, gids, noNewPrivs)
			if err != nil {
				return err
			}
			if tty {
				p.Terminal = true
			}
			if !detach {
				// The process is forked by an intermediate that exits: adopt it.
				if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
					return fmt.Errorf("become subreaper: %w", err)
				}
			}
			pid, err := linux.Exec(cmd.Context(), linux.ExecOpts{
				Root: g.root, ID: id, Process: p, PidFile: pidFile, NsenterLinked: nsenter.Enabled, ConsoleSocket: consoleSocket,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			if err != nil || detach {
				return err
			}
			status, err := linux.WaitForwarding(pid, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
			if err != nil {
				return err
			}
			os.Exit(status)
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&processFile, "process", "p", "", "path to a process.json")
	f.StringVar(&pidFile, "pid-file", "", "write the process's PID to this file")
	f.StringVar(&consoleSocket, "console-socket", "", "unix socket to send the pty master to")
	f.StringVar(&cwd, "cwd", "", "working directory")
	f.StringVarP(&user, "user", "u", "", "UID[:GID]")
	f.StringArrayVarP(&env, "env", "e", nil, "KEY=VALUE to set (repeatable)")
	f.StringArrayVarP(&caps, "cap", "c", nil, "capability to add (repeatable)")
	f.Var(newUint32Slice(&gids), "additional-gids", "additional group IDs (repeatable)")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY (its master goes to --console-socket)")
	f.BoolVarP(&detach, "detach", "d", false, "do not wait for the process")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.IntVar(&preserveFds, "preserve-fds", 0, "pass this many extra fds (not supported yet)")
	return cmd
}

// execProcess builds the process to exec: --process as given, else the
// container's own process with args and the flags' overrides, as runc does.
func execProcess(root, id, processFile string, args []string, cwd, user string, env, caps []string, gids []uint32, nnp bool) (*specs.Process, error) {
	if processFile != "" {
		b, err := os.ReadFile(processFile)
		if err != nil {
			return nil, fmt.Errorf("--process: %w", err)
		}
		var p specs.Process
		if err := (*specjson.Process)(&p).UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("--process %s: %w", processFile, err)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec needs a command or --process")
	}
	st, err := linux.Load(root, id)
	if err != nil {
		return nil, err
	}
	spec, err := linux.LoadSpec(st.Bundle)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = false
	p.Env = append(append([]string(nil), p.Env...), env...)
	if cwd != "" {
		p.Cwd = cwd
	}
	if user != "" {
		u, g, hasG := strings.Cut(user, ":")
		var uid, gid uint64
		if uid, err = strconv.ParseUint(u, 10, 32); err != nil {
			return nil, fmt.Errorf("--user %q: want UID[:GID]", user)
		}
		p.User.UID = uint32(uid)
		if hasG {
			if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
				return nil, fmt.Errorf("--user %q: want UID[:GID]", user)
			}
			p.User.GID = uint32(gid)
		}
	}
	if len(gids) > 0 {
		p.User.AdditionalGids = gids
	}
	if len(caps) > 0 && p.Capabilities != nil {
		c := *p.Capabilities
		c.Bounding = append(append([]string(nil), c.Bounding...), caps...)
		c.Effective = append(append([]string(nil), c.Effective...), caps...)
		c.Permitted = append(append([]string(nil), c.Permitted...), caps...)
		p.Capabilities = &c
	}
	p.NoNewPrivileges = p.NoNewPrivileges || nnp
	// The container's oom_score_adj already applies; asking again could need
	// CAP_SYS_RESOURCE for nothing.
	p.OOMScoreAdj = nil
	return &p, nil
}

// uint32Slice is a repeatable --flag of uint32 values.
type uint32Slice struct{ p *[]uint32 }

func newUint32Slice(p *[]uint32) *uint32Slice { return &uint32Slice{p} }
func (u *uint32Slice) String() string         { return fmt.Sprint(*u.p) }
func (u *uint32Slice) Type() string           { return "uint32" }
func (u *uint32Slice) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return err
		}
		*u.p = append(*u.p, uint32(n))
	}
	return nil
}
