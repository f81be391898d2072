//go:build cgo

// Package nsenter holds the C constructor that joins a running container's
// namespaces before the Go runtime starts (see nsenter.c). berth-runtime
// imports it for its side effect; nothing else should.
package nsenter

// #cgo CFLAGS: -Wall -O2
import "C"

// Enabled reports that the constructor is linked in.
const Enabled = true
