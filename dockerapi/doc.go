// Package dockerapi serves the Docker Engine API (the docker CLI's and the
// SDKs') on a unix socket, translated onto the same services as the CRI: a
// Docker container is a one-container pod owned by "docker", which the CRI
// never lists, and images are shared with the CRI. One file per resource,
// as moby's router is laid out: system.go, images.go, containers.go,
// logs.go. It holds no business logic of its own and touches neither the
// kernel nor the disk but for the logs it reads.
package dockerapi
