package linux

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/specjson"
)

// The parent and the init process talk over a socketpair, one JSON message
// at a time, in this order:
//
//	parent → init: initConfig  (after the init is in its cgroup)
//	init → parent: syncMsg{Type: "ready"} or syncMsg{Type: "error"}
//
// The init then blocks on the exec FIFO; "start" releases it.

// initConfig is everything the init process needs; it never reads the bundle itself.
type initConfig struct {
	ID     string         `json:"id"`
	Bundle string         `json:"bundle"`
	Spec   *specjson.Spec `json:"spec"`
	Rootfs string         `json:"rootfs"`
	// Fifo is the exec FIFO's path on the host, for messages: the init
	// inherits it opened (O_PATH), as fifoEnv says, since a joined mount
	// namespace may not show the host's paths.
	Fifo string `json:"fifo"`
	// JoinsMountNS: the init is in a mount namespace that exists already,
	// whose root is the container's; it mounts nothing and does not pivot.
	JoinsMountNS bool `json:"joinsMountNS,omitempty"`
	// NoPivot: enter the rootfs with MS_MOVE and chroot (--no-pivot).
	NoPivot bool `json:"noPivot,omitempty"`
	// NewCgroupNS: the init unshares its cgroup namespace once it is in its cgroup,
	// so that the namespace's root is the container's cgroup.
	NewCgroupNS bool `json:"newCgroupNS"`
	// CgroupPaths lets the init bind the container's own cgroups into /sys/fs/cgroup.
	Cgroup CgroupPaths `json:"cgroup"`
	// Seccomp is the compiled linux.seccomp, loaded just before exec.
	Seccomp *seccompFilter `json:"seccomp,omitempty"`
	// Seed: the init was cloned from a mount seed (seed_linux.go); Rootfs
	// is then seedRootfs and these are the copies of the host's tree.
	Seed *seedMounts `json:"seed,omitempty"`
}

func (ic *initConfig) spec() *specs.Spec { return (*specs.Spec)(ic.Spec) }

// With prestart or createRuntime hooks, the init stops once its mounts are
// made, before pivot_root: init → parent: syncMsg{Type: "hooks"}; the parent
// runs them and answers syncMsg{Type: "resume"}.
//
// With plan.early (a mount or user namespace joined, or a new time
// namespace), nsenter (C) runs first in the re-executed init: it joins and
// unshares, forks, and its parent sends syncMsg{Type: "pid"} with the init's
// PID and exits; the order above follows.
//
// For exec the order is: nsenter (C) → parent: syncMsg{Type: "pid"}; the
// parent places the PID in the container's cgroup and sends the exec plan
// (execPlan); the C side answers with an "error", or execs, which closes the
// socket (EOF).
//
//easyjson:json
type syncMsg struct {
	Type    string `json:"type"` // "pid", "hooks", "resume", "ready" or "error"
	Message string `json:"message,omitempty"`
	Pid     int    `json:"pid,omitempty"`
}
