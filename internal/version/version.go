// Package version carries the build's version. The Makefile sets Commit
// through -ldflags "-X github.com/berth-runtime/berth/internal/version.Commit=..."
// to `git describe --tags --always --dirty`.
package version

import (
	"runtime/debug"
	"strings"
)

// Release is the release this tree is, or is on its way to.
const Release = "0.3.0"

// Commit is the git description of this build ("" when built without the
// Makefile: the Go toolchain's VCS stamp is used then, if any).
var Commit = ""

// OCISpec is the runtime-spec version berth-runtime implements.
const OCISpec = "1.2.1"

// Version is this build's semantic version, the same in every binary and
// in the CRI's RuntimeVersion (kubelet parses it as one: `kubectl get node
// -o wide` shows berth://0.3.0): the release for a build of its tag,
// otherwise the release as a pre-release with the commit as build
// metadata, "0.3.0-dev+01619ed" ("…+01619ed.dirty" with local changes).
var Version = semver(Release, commit())

func commit() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

func semver(release, describe string) string {
	switch {
	case describe == "v"+release || describe == release:
		return release
	case describe == "":
		return release + "-dev"
	}
	// git describe: "v0.2.0-14-g01619ed-dirty", or "01619ed-dirty" with no tag.
	meta := describe
	if i := strings.LastIndex(describe, "-g"); i >= 0 {
		meta = describe[i+2:]
	}
	meta = strings.ReplaceAll(meta, "-dirty", ".dirty")
	return release + "-dev+" + strings.Trim(buildMeta(meta), ".")
}

// buildMeta turns each run of characters semver's build metadata does not
// allow into one dot. By hand: a regexp compiled at every program's start
// cost every berth-runtime command ~0.2 ms.
func buildMeta(s string) string {
	var b strings.Builder
	dot := false
	for _, c := range s {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' {
			b.WriteRune(c)
			dot = false
		} else if !dot {
			b.WriteByte('.')
			dot = true
		}
	}
	return b.String()
}
