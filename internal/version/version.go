// Package version carries the build's version, set by the Makefile through
// -ldflags "-X github.com/berth-runtime/berth/internal/version.Version=...".
package version

// Version is the release or git description of this build.
var Version = "dev"

// OCISpec is the runtime-spec version berth-runtime implements.
const OCISpec = "1.2.1"
