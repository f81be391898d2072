// Package sandbox owns pod sandboxes: their pinned network, IPC and UTS
// namespaces (bind-mounted under the state dir, so no pause process is
// needed), hostname, /etc/hosts, /etc/resolv.conf and shared /dev/shm, and
// their place on the pod network (network.go, through cni/). recover.go
// sweeps at start what a crash left: sandbox directories without a record,
// network teardowns that did not finish.
//
// sandbox knows nothing of gRPC or of containers.
package sandbox
