// Package shim is berth-shim, one small process per container, and berthd's
// client for it.
//
// The shim is started by berthd in its own session and becomes the child
// subreaper of the container's init, so it, not berthd, reaps the container
// and records its exit; berthd can die and come back without the container
// noticing. It copies the container's stdout and stderr into the CRI log
// file and answers berthd over a unix socket (protocol.go).
//
// shim imports oci/runtimecli and nothing from cri/.
package shim
