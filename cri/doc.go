// Package cri serves the Kubernetes CRI (runtime.v1 RuntimeService and
// ImageService) over gRPC. Each call has a file of its own; each validates
// its request, translates it into the services' terms (sandbox, containers,
// images), delegates, and maps errors to gRPC codes (errors.go). It holds no
// business logic and touches neither the kernel nor the disk.
package cri
