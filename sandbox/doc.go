// Package sandbox owns pod sandboxes: their pinned network, IPC and UTS
// namespaces (bind-mounted under the state dir, so no pause process is
// needed), hostname, /etc/hosts, /etc/resolv.conf and shared /dev/shm.
//
// sandbox knows nothing of gRPC or of containers.
package sandbox
