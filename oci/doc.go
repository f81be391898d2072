// Package oci builds OCI runtime specs from an image config and Berth's own
// ContainerConfig. Its subpackages hold the defaults every container starts
// from (defaults), the low-level runtime itself (linux) and the driver for
// runtime binaries (runtimecli). oci imports nothing from Berth above it and
// knows nothing of Kubernetes.
package oci
