package version

import (
	"regexp"
	"testing"
)

// semverRe is semver.org's own pattern.
var semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func TestSemver(t *testing.T) {
	for describe, want := range map[string]string{
		"v0.3.0":                   "0.3.0",
		"":                         "0.3.0-dev",
		"01619ed":                  "0.3.0-dev+01619ed",
		"01619ed-dirty":            "0.3.0-dev+01619ed.dirty",
		"v0.2.0-14-g01619ed":       "0.3.0-dev+01619ed",
		"v0.2.0-14-g01619ed-dirty": "0.3.0-dev+01619ed.dirty",
		"weird/thing_x":            "0.3.0-dev+weird.thing.x",
	} {
		got := semver("0.3.0", describe)
		if got != want || !semverRe.MatchString(got) {
			t.Errorf("semver(%q) = %q, want %q (a semantic version)", describe, got, want)
		}
	}
	if !semverRe.MatchString(Version) {
		t.Errorf("Version %q is not a semantic version", Version)
	}
}
