// Package cli is `berth`, the docker-compatible command line over the
// Docker Engine API that berthd serves (the moby client module speaks it):
// docker's verbs, flags, tables, --format templates and exit codes. It
// holds no engine logic: everything it does is an API call. `berth pods`
// reads the CRI side of a node, read-only.
//
// It imports nothing of Berth's daemon packages.
package cli
