// Package dockerapi serves the Docker Engine API (the docker CLI's and the
// SDKs') on a unix socket, as moby's api/server/router does over its
// daemon: routes, the requests decoded into engine/'s types, the answers
// encoded as dockerd's JSON, errors as dockerd's error JSON and statuses.
// One file per kind of request (container_create.go, container_list.go,
// images.go, networks.go ...). Docker's rules live in engine/: this package
// runs no process, drives no network, persists nothing and touches neither
// the kernel nor the disk; test/layering holds it to that.
package dockerapi
