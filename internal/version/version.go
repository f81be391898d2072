// Package version carries the build's version. The Makefile sets Commit
// through -ldflags "-X github.com/berth-runtime/berth/internal/version.Commit=..."
// to `git describe --tags --always --dirty`.
package version

import (
	"regexp"
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

var buildMetaUnsafe = regexp.MustCompile(`[^0-9A-Za-z-]+`)

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
	return release + "-dev+" + strings.Trim(buildMetaUnsafe.ReplaceAllString(meta, "."), ".")
}
