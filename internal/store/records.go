package store

import "time"

// SandboxState is a pod sandbox's lifecycle state.
type SandboxState string

const (
	SandboxReady    SandboxState = "ready"
	SandboxNotReady SandboxState = "notready"
)

// Sandbox is a pod sandbox record.
type Sandbox struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	UID         string            `json:"uid"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Config is the CRI PodSandboxConfig as protobuf bytes: the CRI layer
	// owns its meaning; the store only keeps it for status and restarts.
	Config         []byte       `json:"config,omitempty"`
	RuntimeHandler string       `json:"runtimeHandler,omitempty"`
	State          SandboxState `json:"state"`
	CreatedAt      time.Time    `json:"createdAt"`
	// Dir is the sandbox's runtime state directory (pinned namespaces, hostname, hosts, resolv.conf).
	Dir string `json:"dir"`
	// Namespaces maps "network", "ipc", "uts" to pinned namespace paths.
	Namespaces   map[string]string `json:"namespaces,omitempty"`
	CgroupParent string            `json:"cgroupParent,omitempty"`
	Hostname     string            `json:"hostname,omitempty"`
	LogDirectory string            `json:"logDirectory,omitempty"`
	// IP is the pod's first address (IPv4 when it has one), AdditionalIPs the rest.
	IP            string   `json:"ip,omitempty"`
	AdditionalIPs []string `json:"additionalIps,omitempty"`
	// Sysctls are the pod's namespaced sysctls, applied in every container.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// PausePid and PauseStart name PID 1 of the pod's shared PID namespace,
	// when the pod has one (Namespaces["pid"]).
	PausePid   int    `json:"pausePid,omitempty"`
	PauseStart uint64 `json:"pauseStart,omitempty"`
	// Owner is the front end the pod belongs to: "" for the CRI, "docker"
	// for a Docker container's pod. Each front end lists only its own.
	Owner string `json:"owner,omitempty"`
	// UIDMappings and GIDMappings are the pod's user namespace
	// (Namespaces["user"]), when it has one of its own.
	UIDMappings []IDMap `json:"uidMappings,omitempty"`
	GIDMappings []IDMap `json:"gidMappings,omitempty"`
}

// IDMap maps Size IDs from ContainerID in a user namespace to HostID up.
type IDMap struct {
	ContainerID uint32 `json:"containerId"`
	HostID      uint32 `json:"hostId"`
	Size        uint32 `json:"size"`
}

// ContainerState is a container's lifecycle state.
type ContainerState string

const (
	ContainerCreated ContainerState = "created"
	ContainerRunning ContainerState = "running"
	ContainerExited  ContainerState = "exited"
	ContainerUnknown ContainerState = "unknown"
)

// Container is a container record.
type Container struct {
	ID          string            `json:"id"`
	SandboxID   string            `json:"sandboxId"`
	Name        string            `json:"name"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Config is the CRI ContainerConfig as protobuf bytes.
	Config []byte `json:"config,omitempty"`
	// ImageRef is what the caller asked for; ImageID is the resolved image ID.
	ImageRef string `json:"imageRef"`
	ImageID  string `json:"imageId"`
	// CgroupsPath is the container's cgroup (linux.cgroupsPath of its spec).
	CgroupsPath string `json:"cgroupsPath,omitempty"`
	// User is who the container's process runs as (resolved from the image
	// and the request), for its status.
	User *ProcessUser `json:"user,omitempty"`
	// VolumeImages are the IDs of the images mounted as its volumes: in use
	// as long as the container is, like ImageID.
	VolumeImages []string `json:"volumeImages,omitempty"`
	// Runtime is the path of the OCI runtime binary driving this container,
	// RuntimeRoot its --root.
	Runtime     string `json:"runtime"`
	RuntimeRoot string `json:"runtimeRoot"`
	// Socket is the shim's socket.
	Socket string `json:"socket"`
	// StopSignal is the image's, or "" for SIGTERM.
	StopSignal string         `json:"stopSignal,omitempty"`
	State      ContainerState `json:"state"`
	Pid        int            `json:"pid,omitempty"`
	CreatedAt  time.Time      `json:"createdAt"`
	StartedAt  time.Time      `json:"startedAt,omitzero"`
	FinishedAt time.Time      `json:"finishedAt,omitzero"`
	ExitCode   int32          `json:"exitCode"`
	Reason     string         `json:"reason,omitempty"`
	Message    string         `json:"message,omitempty"`
	LogPath    string         `json:"logPath,omitempty"`
	// Dir is the container's runtime state directory (bundle, shim socket, exit file).
	Dir string `json:"dir"`
	// Owner is its pod's (see Sandbox.Owner).
	Owner string `json:"owner,omitempty"`
	// Paused: its processes are frozen (Pause).
	Paused bool `json:"paused,omitempty"`
	// RestartCount counts the Restarts of the container.
	RestartCount int `json:"restartCount,omitempty"`
	// Creating: Create has not returned yet (NRI plugins may be adjusting
	// it); the front ends do not see it until then.
	Creating bool `json:"creating,omitempty"`
}

// Image is an image record, keyed by image ID (sha256:<config digest>).
type Image struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags,omitempty"`
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Manifest is the digest of the image manifest that was pulled.
	Manifest string `json:"manifest"`
	// Layers are the diff IDs of the layers, bottom first.
	Layers []string `json:"layers"`
	// ChainIDs name the unpacked layer snapshots, bottom first.
	ChainIDs []string `json:"chainIds"`
	// Blobs are the content-store digests the image holds: its config and
	// compressed layers.
	Blobs []string `json:"blobs,omitempty"`
	// Size is the sum of the compressed layers and config, as registries report.
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"createdAt"`
	Pinned    bool      `json:"pinned,omitempty"`
	Config    []byte    `json:"config"`
}

// ProcessUser is a process's identity.
type ProcessUser struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}
