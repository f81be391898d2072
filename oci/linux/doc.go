// Package linux is Berth's low-level OCI runtime: what berth-runtime runs.
//
// A container is made in stages, one file each:
//   - create_linux.go: the parent ("berth-runtime create"): clones the init
//     process into its namespaces, places it in its cgroup, and waits for it
//     to report that the container is set up.
//   - init_linux.go: the init process ("berth-runtime init", a re-exec of the
//     same binary): builds the root filesystem, drops privileges, then blocks
//     on the exec FIFO until "start" opens it, and execs the user's process.
//   - sync.go: the messages the two exchange over a socketpair.
//   - start.go, kill.go, delete.go, state.go: the other commands.
//
// Kernel facilities have a file each: namespaces_linux.go, mounts_linux.go,
// cgroups*.go, capabilities_linux.go, process_linux.go.
//
// The package imports nothing from Berth above oci/.
package linux
