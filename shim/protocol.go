package shim

// This file is the contract between berthd and berth-shim, two processes of
// different ages: a shim started by last month's berthd keeps running, and
// this month's berthd must still manage it (and a shim may outlive several
// upgrades). Everything one side writes for the other is defined here, and
// testdata/protocol/v1 holds recorded messages of every kind that
// protocol_test.go decodes, so a change that would break an old peer fails
// a test.
//
// # Transport
//
// The shim listens on a unix socket (Config.Socket). Each connection carries
// one Request, JSON, from berthd. For every op but the two stream ops the
// shim answers one Response, JSON, and closes the connection. After an
// OpExecStream or OpAttach request the connection carries frames both ways
// (stream.go): a type byte, a 4-byte big-endian length, the payload; the
// shim's first frame is frameVersion, its last frameExit or frameError.
//
// # Versions
//
// ProtocolVersion is the version a binary speaks. The exchange happens on
// every connection: a Request's "v" is the version its op and fields need
// (opSince), not the sender's own, so a newer berthd still speaks to an older
// shim with everything that shim knows; the shim refuses, with an error that
// names both versions, a request newer than itself. Every Response carries the
// shim's own "v" (absent means 1), and so does the frameVersion frame, which
// is how berthd learns what a shim it did not start can do (Client.Hello).
//
// # Rules for changing it
//
//   - Never rename or remove a field, op, frame type or file, or change the
//     meaning or JSON type of one; add new ones instead. Both sides ignore JSON
//     fields they do not know, and berthd ignores frame types it does not know.
//   - A new op, or a new request field an old shim would silently ignore where
//     that matters, raises ProtocolVersion and is listed in opSince (or sets the
//     request's version) at the new number; record its messages under
//     testdata/protocol/vN.
//   - New response fields and new frame types from the shim need no new
//     version: old berthds ignore them.
//   - shim.json (Config) is written by berthd for a shim it starts now, so
//     it only needs the shim binary installed with that berthd; exit.json (Exit)
//     is read by berthds of any later age and follows the rules above.

import (
	"encoding/json"
	"time"
)

// ProtocolVersion is the protocol version this binary speaks.
//
//   - 1: every op.
//   - 2: an exec's Env, Cwd and User (OpExec, OpExecStream): a request that
//     sets one says "v": 2, so that a version 1 shim, which would run the
//     process without them, refuses it instead.
const ProtocolVersion = 2

// The ops. "wait" answers when the container has exited, which is how
// berthd hears of exits at once.
const (
	OpState  = "state"
	OpStart  = "start"
	OpKill   = "kill"
	OpWait   = "wait"
	OpDelete = "delete"
	// OpExec runs a process in the container and answers with its exit
	// code and output (CRI ExecSync).
	OpExec = "exec"
	// OpReopenLog reopens the CRI log file after kubelet rotated it.
	OpReopenLog = "reopen-log"
	// OpExecStream runs a process with streams (stream.go): stdin, stdout,
	// stderr or a terminal, resizes, and its exit code at the end.
	OpExecStream = "exec-stream"
	// OpUpdate changes the container's limits (Resources: LinuxResources JSON);
	// OpPause and OpResume freeze and thaw it.
	OpUpdate = "update"
	OpPause  = "pause"
	OpResume = "resume"
	// OpAttach streams the main process's output (as it is written to the
	// log) and, if it has one, feeds its stdin, until it exits.
	OpAttach = "attach"
)

// opSince is the protocol version that introduced each op: what a request
// for it says in "v", so that any shim at least that new serves it.
var opSince = map[string]int{
	OpState: 1, OpStart: 1, OpKill: 1, OpWait: 1, OpDelete: 1, OpExec: 1, OpReopenLog: 1,
	OpExecStream: 1, OpUpdate: 1, OpPause: 1, OpResume: 1, OpAttach: 1,
}

// requestVersion is the version a request for op must carry.
func requestVersion(op string) int {
	if v, ok := opSince[op]; ok {
		return v
	}
	return ProtocolVersion
}

// MaxExecOutput bounds what OpExec returns of each stream; the rest is dropped.
const MaxExecOutput = 16 << 20

// Request is what berthd sends.
type Request struct {
	// Version is the protocol version the request needs (requestVersion).
	Version int    `json:"v"`
	Op      string `json:"op"`
	Signal  int    `json:"signal,omitempty"`
	All     bool   `json:"all,omitempty"`
	// Args and Timeout are OpExec's: the command, and how long it may run (0: no limit).
	Args    []string      `json:"args,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// Stream options (OpExecStream): a terminal, and whether stdin is attached.
	Tty   bool  `json:"tty,omitempty"`
	Stdin bool  `json:"stdin,omitempty"`
	Size  *Size `json:"size,omitempty"`
	// Resources are OpUpdate's: LinuxResources as JSON.
	Resources json.RawMessage `json:"resources,omitempty"`
	// Env (KEY=VALUE, over the container's), Cwd and User change an exec's
	// process from the container's own (version 2).
	Env  []string  `json:"env,omitempty"`
	Cwd  string    `json:"cwd,omitempty"`
	User *ExecUser `json:"user,omitempty"`
}

// ExecUser is the user an exec runs as, resolved to IDs by berthd.
type ExecUser struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

// version is the protocol version req needs: its op's, or 2 for an exec
// that changes its process's env, cwd or user.
func (req Request) version() int {
	v := requestVersion(req.Op)
	if len(req.Env) > 0 || req.Cwd != "" || req.User != nil {
		v = max(v, 2)
	}
	return v
}

// Response is what the shim answers; Error is set when the call failed.
type Response struct {
	// Version is the shim's ProtocolVersion (0, absent: 1).
	Version int         `json:"v,omitempty"`
	Error   string      `json:"error,omitempty"`
	Status  Status      `json:"status"`
	Exec    *ExecResult `json:"exec,omitempty"`
}

// ExecResult is what an OpExec process did.
type ExecResult struct {
	ExitCode int32  `json:"exitCode"`
	Stdout   []byte `json:"stdout,omitempty"`
	Stderr   []byte `json:"stderr,omitempty"`
	TimedOut bool   `json:"timedOut,omitempty"`
}

// Status is the container as the shim sees it.
type Status struct {
	ID      string    `json:"id"`
	Pid     int       `json:"pid"`
	Running bool      `json:"running"`
	Started time.Time `json:"started,omitzero"`
	// Exited is set once the init has been reaped.
	Exit *Exit `json:"exit,omitempty"`
}

// Exit is a container's end, also written to the exit file before the shim
// reports it, so that it survives the shim.
type Exit struct {
	Code    int32     `json:"code"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Message string    `json:"message,omitempty"`
}

// Config is how berthd describes the container to its shim (shim.json in the shim's dir).
type Config struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	// Runtime is the OCI runtime binary; RuntimeRoot its --root.
	Runtime     string `json:"runtime"`
	RuntimeRoot string `json:"runtimeRoot"`
	// RuntimeEnv is added to the runtime's environment (berth-runtime's mount seed).
	RuntimeEnv []string `json:"runtimeEnv,omitempty"`
	// LogPath is the CRI log file; "" discards output.
	LogPath string `json:"logPath,omitempty"`
	// Socket is where the shim listens.
	Socket string `json:"socket"`
	// Stdin keeps the main process's stdin open for attach; StdinOnce closes
	// it when the first attached client detaches. Tty gives it a terminal.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	Tty       bool `json:"tty,omitempty"`
	// Forwards are host ports the shim itself serves (IPv6 ones).
	Forwards []Forward `json:"forwards,omitempty"`
}

// Files in the shim's directory.
const (
	ConfigFile = "shim.json"
	ExitFile   = "exit.json"
	PidFile    = "init.pid"
	ShimLog    = "shim.log"
	RuntimeLog = "runtime.log"
)
