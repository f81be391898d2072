package linux

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelRelease is uname's release and the major and minor it begins with.
func KernelRelease() (release string, major, minor int) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release = unix.ByteSliceToString(uts.Release[:])
	parts := strings.SplitN(release, ".", 3)
	if len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	}
	return release, major, minor
}

// KernelAtLeast says whether the running kernel is major.minor or newer.
func KernelAtLeast(major, minor int) bool {
	_, ma, mi := KernelRelease()
	return ma > major || ma == major && mi >= minor
}

// UserNamespacesEnabled reports user.max_user_namespaces, and false when
// it is 0 (or absent: a kernel without user namespaces).
func UserNamespacesEnabled() (max string, ok bool) {
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	max = strings.TrimSpace(string(b))
	return max, err == nil && max != "0"
}

// IDMappedOverlay says pods may have user namespaces of their own here:
// user namespaces are on and overlayfs mounts can be idmapped (5.19), which
// is how a pod's root comes to own its image's files.
func IDMappedOverlay() bool {
	_, ok := UserNamespacesEnabled()
	return ok && KernelAtLeast(5, 19)
}
