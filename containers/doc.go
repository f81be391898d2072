// Package containers runs containers in pod sandboxes: it mounts their root
// filesystems, builds their runtime specs, starts a berth-shim for each, hears
// of their exits, and stops and removes them. It also stops and removes whole
// pods, since that means stopping their containers first. A shim that stops
// answering does not stop it: stop and removal go on through the container's
// cgroup (unresponsive.go). Image volumes, stats and runtime handler features
// live here too.
//
// containers knows nothing of gRPC; the CRI and Docker front ends translate to it.
package containers
