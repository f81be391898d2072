package linux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// statePaused is runc's fifth state, which the OCI spec does not list.
const statePaused specs.ContainerState = "paused"

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// State is what the runtime remembers of a container in <root>/<id>/state.json.
//
//easyjson:json
type State struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	Pid    int    `json:"pid"`
	// StartTime is field 22 of /proc/<pid>/stat: it tells our init from a
	// later process that reused its PID.
	StartTime   uint64            `json:"startTime"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Cgroup      CgroupPaths       `json:"cgroup"`
	// Owner is "" for root; kept so "state" reports it as runc does.
	Owner string `json:"owner,omitempty"`
	// Seccomp is the filter the init runs under (an empty program for
	// none), compiled once at create: exec applies it to its process without
	// reading the bundle's spec or needing libseccomp (the shim execs in
	// process). Nil in states written before it was kept.
	Seccomp *seccompFilter `json:"seccomp,omitempty"`
	// MountSeed: the init's mount namespace was made from a mount seed
	// (seed_linux.go), not copied from the host's.
	MountSeed bool `json:"mountSeed,omitempty"`
	// CInit: the init was the C one (initplan_linux.go), not the Go one.
	CInit bool `json:"cInit,omitempty"`
}

// checkID allows what runc allows: letters, digits and _ + - . (no
// regexp: compiling one would cost every runtime start).
func checkID(id string) error {
	ok := id != "" && id != "." && id != ".."
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+-.", c)) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("invalid container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func stateDir(root, id string) string { return filepath.Join(root, id) }

// Load reads the state of container id under root.
func Load(root, id string) (*State, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(stateDir(root, id), stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var s State
	if err := s.UnmarshalJSON(b); err != nil { // generated: no encoding/json tables to build
		return nil, fmt.Errorf("decode state of %s: %w", id, err)
	}
	return &s, nil
}

func (s *State) save(root string) error {
	b, err := s.MarshalJSON()
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(stateDir(root, s.ID), stateFile), b, 0o600)
}

// Status is the OCI status of the container: created, running, paused or stopped.
func (s *State) Status(root string) specs.ContainerState {
	if !processAlive(s.Pid, s.StartTime) {
		return specs.StateStopped
	}
	if _, err := os.Stat(filepath.Join(stateDir(root, s.ID), fifoName)); err == nil {
		return specs.StateCreated
	}
	if s.Cgroup.frozen() {
		return statePaused
	}
	return specs.StateRunning
}

// OCIState is the state as the OCI spec and "runc state" print it.
func (s *State) OCIState(root string) specs.State {
	st := specs.State{
		Version:     specs.Version,
		ID:          s.ID,
		Status:      s.Status(root),
		Bundle:      s.Bundle,
		Annotations: s.Annotations,
	}
	if st.Status != specs.StateStopped {
		st.Pid = s.Pid
	}
	return st
}

// processStartTime returns field 22 of /proc/pid/stat and the process state letter.
func processStartTime(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// comm (field 2) may hold spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+2:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(string(fields[19]), 10, 64)
	return st, fields[0][0], err
}

func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, state, err := processStartTime(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return start == 0 || st == start
}

// List returns the state of every container under root.
func List(root string) ([]*State, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s, err := Load(root, e.Name())
		if err != nil {
			continue // a half-created container: create cleans up or delete --force will
		}
		out = append(out, s)
	}
	return out, nil
}

// ProcessStartTime returns a process's start time (field 22 of its stat):
// with the PID it names a process, whatever later reuses the PID.
func ProcessStartTime(pid int) (uint64, error) {
	st, _, err := processStartTime(pid)
	return st, err
}

// ProcessAlive reports whether pid is the process that started at start and has not exited.
func ProcessAlive(pid int, start uint64) bool { return processAlive(pid, start) }

// ProcessesMatching lists the processes whose command line (NUL-separated,
// as /proc/<pid>/cmdline has it) match accepts: how a process whose pid
// was never written down (a crash came first) is found again.
func ProcessesMatching(match func(cmdline string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && match(string(b)) {
			out = append(out, pid)
		}
	}
	return out
}
