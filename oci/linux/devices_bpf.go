package linux

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup2 has no devices.allow: a BPF_PROG_TYPE_CGROUP_DEVICE program
// attached to the cgroup decides each open and mknod. Its context is
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
// access_type holding the device type in its low 16 bits and the access
// (mknod 1, read 2, write 4) in its high ones.
//
// The program uses eight opcodes and the loader four bpf(2) commands, so
// both are written here rather than taken from cilium/ebpf, which adds
// 1.6 MB and 1.5-3 ms (measured) to every berth-runtime invocation, create
// and exec alike.
const (
	bpfDevBlock = 1 // BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = 2 // BPF_DEVCG_DEV_CHAR
)

// bpfInsn is struct bpf_insn.
type bpfInsn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

const (
	bpfLdxMemW = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	bpfAnd32K  = 0x54 // BPF_ALU | BPF_AND | BPF_K
	bpfRsh32K  = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	bpfMov32X  = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	bpfMov64K  = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	bpfJneK    = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	bpfJneX    = 0x5d // BPF_JMP | BPF_JNE | BPF_X
	bpfExit    = 0x95 // BPF_JMP | BPF_EXIT
	jumpToNext = math.MinInt16
	r0, r1, r2 = 0, 1, 2
	r3, r4, r5 = 3, 4, 5
)

func insn(code, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

// deviceFilter compiles OCI device rules into the program. The rules apply
// in order with the last match winning, as devices.allow and devices.deny
// do on v1: the program tests them last first, and the first that matches
// decides. No match denies.
func deviceFilter(rules []specs.LinuxDeviceCgroup) ([]bpfInsn, error) {
	prog := []bpfInsn{
		insn(bpfLdxMemW, r2, r1, 0, 0), // R2 = access_type
		insn(bpfAnd32K, r2, 0, 0, 0xffff),
		insn(bpfLdxMemW, r3, r1, 0, 0), // R3 = access
		insn(bpfRsh32K, r3, 0, 0, 16),
		insn(bpfLdxMemW, r4, r1, 4, 0), // R4 = major
		insn(bpfLdxMemW, r5, r1, 8, 0), // R5 = minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		// Jumps in block go to the end of the block, the next rule's
		// start: jumpToNext marks them until the block's length is known.
		var block []bpfInsn
		switch r.Type {
		case "", "a":
		case "c", "b":
			typ := int32(bpfDevChar)
			if r.Type == "b" {
				typ = bpfDevBlock
			}
			block = append(block, insn(bpfJneK, r2, 0, jumpToNext, typ))
		default:
			return nil, fmt.Errorf("linux.resources.devices[%d]: type %q: want a, b or c", i, r.Type)
		}
		var acc int32
		for _, c := range r.Access {
			switch c {
			case 'm':
				acc |= 1
			case 'r':
				acc |= 2
			case 'w':
				acc |= 4
			default:
				return nil, fmt.Errorf("linux.resources.devices[%d]: access %q: want letters of rwm", i, r.Access)
			}
		}
		if acc != 7 && r.Access != "" {
			// The rule covers a request only if it grants every bit asked.
			block = append(block,
				insn(bpfMov32X, r1, r3, 0, 0),
				insn(bpfAnd32K, r1, 0, 0, acc),
				insn(bpfJneX, r1, r3, jumpToNext, 0))
		}
		for _, n := range []struct {
			v    *int64
			reg  uint8
			what string
		}{{r.Major, r4, "major"}, {r.Minor, r5, "minor"}} {
			if n.v == nil || *n.v < 0 {
				continue
			}
			if *n.v > math.MaxInt32 {
				return nil, fmt.Errorf("linux.resources.devices[%d]: %s %d out of range", i, n.what, *n.v)
			}
			block = append(block, insn(bpfJneK, n.reg, 0, jumpToNext, int32(*n.v)))
		}
		conditional := len(block) > 0
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		block = append(block, insn(bpfMov64K, r0, 0, 0, verdict), insn(bpfExit, 0, 0, 0, 0))
		for j := range block {
			if block[j].off == jumpToNext {
				block[j].off = int16(len(block) - j - 1)
			}
		}
		prog = append(prog, block...)
		if !conditional {
			// It matches every request: the rules before it never decide
			// (and the verifier refuses unreachable code).
			return prog, nil
		}
	}
	return append(prog, insn(bpfMov64K, r0, 0, 0, 0), insn(bpfExit, 0, 0, 0, 0)), nil
}

// bpf(2) attributes, as far as the commands used here read them.
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

type bpfAttachAttr struct {
	targetFd, attachBpfFd, attachType, attachFlags, replaceBpfFd uint32
}

type bpfQueryAttr struct {
	targetFd, attachType, queryFlags, attachFlags uint32
	progIDs                                       uint64
	progCnt                                       uint32
	_                                             uint32
}

type bpfGetFdAttr struct {
	id, nextID, openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// loadDeviceProgram loads prog and returns its fd; a verifier refusal
// comes with the verifier's log.
func loadDeviceProgram(prog []bpfInsn) (int, error) {
	license := []byte("Apache-2.0\x00")
	log := make([]byte, 64<<10)
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE, insnCnt: uint32(len(prog)),
		insns: uint64(uintptr(unsafe.Pointer(&prog[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1, logSize: uint32(len(log)), logBuf: uint64(uintptr(unsafe.Pointer(&log[0]))),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if err != nil {
		n := 0
		for n < len(log) && log[n] != 0 {
			n++
		}
		return -1, fmt.Errorf("%w: %s", err, log[:n])
	}
	return fd, nil
}

// attachDeviceFilter loads the rules' program and attaches it to the
// cgroup2 directory dir, replacing any that an earlier create or update of
// ours attached there.
func attachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	prog, err := deviceFilter(rules)
	if err != nil {
		return err
	}
	progFd, err := loadDeviceProgram(prog)
	if err != nil {
		return fmt.Errorf("load the device filter for %s: %w", dir, err)
	}
	defer unix.Close(progFd)
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device filter: %w", err)
	}
	defer unix.Close(cg)
	old, err := attachedDevicePrograms(cg)
	if err != nil {
		return fmt.Errorf("device filter: query %s: %w", dir, err)
	}
	attach := bpfAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(progFd), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("attach the device filter to %s: %w", dir, err)
	}
	// The new filter is in place before the old go: no moment without one.
	for _, id := range old {
		get := bpfGetFdAttr{id: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err != nil {
			continue
		}
		detach := bpfAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		_, _ = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(fd)
	}
	return nil
}

// attachedDevicePrograms lists the IDs of the device programs attached to
// the cgroup whose directory fd is cg.
func attachedDevicePrograms(cg int) ([]uint32, error) {
	ids := make([]uint32, 64)
	q := bpfQueryAttr{targetFd: uint32(cg), attachType: unix.BPF_CGROUP_DEVICE,
		progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:q.progCnt], nil
}
