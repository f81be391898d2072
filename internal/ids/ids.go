// Package ids makes the 64-hex-digit IDs of sandboxes and containers.
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random 256-bit ID in hex, as Docker and containerd use.
func New() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
