// Package nri is the runtime side of the Node Resource Interface
// (github.com/containerd/nri): it serves NRI plugins on a socket, starts
// the pre-registered ones, tells them of every pod and container event and
// hands back what they ask to change — adjustments to a container's spec
// before it is created, resources at an update, updates to other
// containers and evictions. It sits beside the spec builder, as CDI does:
// the containers service calls it for CRI and Docker containers alike, so
// neither front knows of it.
//
// Each call to a plugin is bounded by the plugin request timeout (the NRI
// library closes a plugin that misses it), so a plugin that hangs or dies
// costs a request that much, never a hang.
//
// nri knows Berth's records (internal/store) and OCI specs; it must not
// import containers, sandbox or either front end: what it needs from them
// (a list to synchronize with, an update, an eviction) comes through Domain.
package nri
