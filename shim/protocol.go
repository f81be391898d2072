package shim

import (
	"encoding/json"
	"time"
)

// ProtocolVersion is sent in every request. A shim refuses a request of a
// newer version than its own, so a new berthd can tell an old shim apart.
const ProtocolVersion = 1

// The protocol: one JSON Request per connection, answered by one JSON
// Response, then the shim closes the connection. "wait" answers when the
// container has exited, which is how berthd hears of exits at once.
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

// MaxExecOutput bounds what OpExec returns of each stream; the rest is dropped.
const MaxExecOutput = 16 << 20

// Request is what berthd sends.
type Request struct {
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
}

// Response is what the shim answers; Error is set when the call failed.
type Response struct {
	Error  string      `json:"error,omitempty"`
	Status Status      `json:"status"`
	Exec   *ExecResult `json:"exec,omitempty"`
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
	// LogPath is the CRI log file; "" discards output.
	LogPath string `json:"logPath,omitempty"`
	// Socket is where the shim listens.
	Socket string `json:"socket"`
	// Stdin keeps the main process's stdin open for attach; StdinOnce closes
	// it when the first attached client detaches. Tty gives it a terminal.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	Tty       bool `json:"tty,omitempty"`
}

// Files in the shim's directory.
const (
	ConfigFile = "shim.json"
	ExitFile   = "exit.json"
	PidFile    = "init.pid"
	ShimLog    = "shim.log"
	RuntimeLog = "runtime.log"
)
