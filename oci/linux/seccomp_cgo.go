//go:build cgo

package linux

import (
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// SeccompSupported reports that this build can compile filters.
const SeccompSupported = true

var seccompActions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill: libseccomp.ActKillThread, specs.ActKillThread: libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess, specs.ActTrap: libseccomp.ActTrap,
	specs.ActErrno: libseccomp.ActErrno, specs.ActTrace: libseccomp.ActTrace,
	specs.ActAllow: libseccomp.ActAllow, specs.ActLog: libseccomp.ActLog,
}

var seccompOps = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual: libseccomp.CompareNotEqual, specs.OpLessThan: libseccomp.CompareLess,
	specs.OpLessEqual: libseccomp.CompareLessOrEqual, specs.OpEqualTo: libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual, specs.OpGreaterThan: libseccomp.CompareGreater,
	specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
}

func seccompAction(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	act, ok := seccompActions[a]
	if !ok {
		return 0, fmt.Errorf("unsupported action %q", a)
	}
	switch act {
	case libseccomp.ActErrno:
		ret := int16(unix.EPERM)
		if errnoRet != nil {
			ret = int16(*errnoRet)
		}
		act = act.SetReturnCode(ret)
	case libseccomp.ActTrace:
		ret := int16(unix.EPERM)
		if errnoRet != nil {
			ret = int16(*errnoRet)
		}
		act = act.SetReturnCode(ret)
	}
	return act, nil
}

// compileSeccomp turns linux.seccomp into BPF with libseccomp. Unknown
// syscall names are skipped (an older kernel's libseccomp may not know a
// new one), as runc does; everything else unsupported is an error naming it.
func compileSeccomp(s *specs.LinuxSeccomp) (*seccompFilter, error) {
	if s == nil {
		return nil, nil
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("linux.seccomp.listenerPath: %w", errUnsupportedSeccomp)
	}
	def, err := seccompAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	defer f.Release()
	// The runtime enforces no_new_privs itself, and the filter must not
	// stop the init's last steps when it loads before them.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, err
	}
	for _, a := range s.Architectures {
		arch, err := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures %q: %w", a, err)
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures %q: %w", a, err)
		}
	}
	for i, sc := range s.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
		}
		if act == def {
			continue // libseccomp refuses rules that repeat the default
		}
		var conds []libseccomp.ScmpCondition
		for _, a := range sc.Args {
			op, ok := seccompOps[a.Op]
			if !ok {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: unsupported operator %q", i, a.Op)
			}
			c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
			if err != nil {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
			}
			conds = append(conds, c)
		}
		for _, name := range sc.Names {
			id, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue
			}
			if len(conds) == 0 {
				err = f.AddRule(id, act)
			} else {
				err = f.AddRuleConditional(id, act, conds)
			}
			if err != nil {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	errc := make(chan error, 1)
	go func() { errc <- f.ExportBPF(w); w.Close() }()
	prog, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("linux.seccomp: export: %w", err)
	}
	out := &seccompFilter{Program: prog}
	for _, fl := range s.Flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			out.Flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			out.Flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// Only the execing thread matters to us.
		default:
			return nil, fmt.Errorf("linux.seccomp.flags: unsupported flag %q", fl)
		}
	}
	return out, nil
}
