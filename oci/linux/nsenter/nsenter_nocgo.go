//go:build !cgo

package nsenter

// Enabled is false in a build without cgo: exec is then unavailable.
const Enabled = false
