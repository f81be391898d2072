package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func setHostname(s *specs.Spec) error {
	if s.Hostname == "" && s.Domainname == "" {
		return nil
	}
	hasUTS := false
	for _, n := range s.Linux.Namespaces {
		hasUTS = hasUTS || n.Type == specs.UTSNamespace
	}
	if !hasUTS {
		return errors.New("hostname: setting it needs a uts entry in linux.namespaces")
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("hostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("domainname %q: %w", s.Domainname, err)
		}
	}
	return nil
}

// applySysctls writes linux.sysctl through /proc/sys (mounted by now).
func applySysctls(sysctls map[string]string) error {
	for k, v := range sysctls {
		if err := validSysctlKey(k); err != nil {
			return err
		}
		if err := os.WriteFile(sysctlPath(k), []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// validSysctlKey refuses a key that would leave /proc/sys.
func validSysctlKey(k string) error {
	if strings.Contains(k, "..") || strings.HasPrefix(k, "/") || strings.IndexByte(k, 0) >= 0 {
		return fmt.Errorf("linux.sysctl: invalid key %q", k)
	}
	return nil
}

// sysctlPath is key's file: net.ipv4.ip_forward is /proc/sys/net/ipv4/ip_forward.
func sysctlPath(k string) string { return filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")) }

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// KnownRlimit reports whether name ("RLIMIT_NOFILE") is a limit the runtime sets.
func KnownRlimit(name string) bool {
	_, ok := rlimitNames[name]
	return ok
}

// setupProcess applies process attributes, ending with the switch to the
// container's user and capabilities: after that it can no longer change them.
// personality turns linux.personality into personality(2)'s argument.
// Domains LINUX and LINUX32; no flags (the spec names none).
func personality(p *specs.LinuxPersonality) (uint, error) {
	if p == nil {
		return 0, nil
	}
	if len(p.Flags) > 0 {
		return 0, fmt.Errorf("linux.personality.flags %v: not supported", p.Flags)
	}
	switch p.Domain {
	case specs.PerLinux:
		return 0x0000, nil
	case specs.PerLinux32:
		return 0x0008, nil
	}
	return 0, fmt.Errorf("linux.personality.domain %q: want LINUX or LINUX32", p.Domain)
}

// ioPriority turns process.ioPriority into ioprio_set(2)'s value.
func ioPriority(p *specs.LinuxIOPriority) (int, error) {
	if p == nil {
		return 0, nil
	}
	classes := map[specs.IOPriorityClass]int{specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3}
	class, ok := classes[p.Class]
	if !ok {
		return 0, fmt.Errorf("ioPriority.class %q: want IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return 0, fmt.Errorf("ioPriority.priority %d: want 0 to 7", p.Priority)
	}
	return class<<13 | p.Priority, nil
}

func setupProcess(p *specs.Process, seccompEarly *seccompFilter) error {
	if prio, err := ioPriority(p.IOPriority); err != nil || prio != 0 {
		if err != nil {
			return fmt.Errorf("process.%w", err)
		}
		const ioprioWhoProcess = 1
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); errno != 0 {
			return fmt.Errorf("process.ioPriority: ioprio_set: %w", errno)
		}
	}
	for _, rl := range p.Rlimits {
		res, ok := rlimitNames[rl.Type]
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		if err := unix.Prlimit(0, res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}, nil); err != nil {
			return fmt.Errorf("process.rlimits %s: %w", rl.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			if errors.Is(err, unix.EIO) || errors.Is(err, unix.EACCES) {
				return fmt.Errorf("process.oomScoreAdj %d: %w (lowering it needs CAP_SYS_RESOURCE, which this runtime lacks)", *p.OOMScoreAdj, err)
			}
			return fmt.Errorf("process.oomScoreAdj %d: %w", *p.OOMScoreAdj, err)
		}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return fmt.Errorf("process.cwd %q must be absolute", cwd)
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("process.cwd %s: %w", cwd, err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("process.cwd %s: %w", cwd, err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	if err := loadSeccomp(seccompEarly); err != nil {
		return err
	}
	if err := switchUser(p.User, p.Capabilities); err != nil {
		return err
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	return nil
}

// switchUser sets groups, gid and uid with raw per-thread system calls: this
// thread is the one that execs, and Go's all-threads variants would also
// demote threads we are about to discard. Capabilities are kept across the
// uid change (PR_SET_KEEPCAPS) and then set to exactly the spec's.
func switchUser(u specs.User, caps *specs.LinuxCapabilities) error {
	c, err := parseCaps(caps)
	if err != nil {
		return err
	}
	if err := c.dropBounding(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	gids := make([]uint32, 0, len(u.AdditionalGids))
	gids = append(gids, u.AdditionalGids...)
	var gp uintptr
	if len(gids) > 0 {
		gp = uintptrOf(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), gp, 0); e != 0 {
		return fmt.Errorf("process.user.additionalGids %v: %w", u.AdditionalGids, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("process.user.gid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("process.user.uid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep capabilities: %w", err)
	}
	return c.apply()
}

// lookPath finds file in the container's PATH (from its env, not ours).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", fmt.Errorf("process.args[0] %s: %w", file, err)
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0] %q: executable file not found in $PATH (%s)", file, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	return unix.Access(p, unix.X_OK)
}
