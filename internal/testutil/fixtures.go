package testutil

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BusyboxRootfs fills dir with a minimal root filesystem: the static busybox
// from Debian's busybox-static, a link per applet, /etc/passwd and /etc/group.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	bb := BusyboxBinary(t)
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/nobody"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range BusyboxApplets(t) {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	for name, content := range EtcFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// EtcFiles are the account files of the busybox fixtures.
var EtcFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/false\nberth:x:1000:1000:berth:/home/berth:/bin/sh\n",
	"etc/group":  "root:x:0:\nnogroup:x:65534:\nberth:x:1000:\nextra:x:2000:berth\n",
}

// BusyboxBinary returns the path of Debian's static busybox (busybox-static).
func BusyboxBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("needs a static busybox: apt-get install busybox-static")
	return ""
}

// BusyboxApplets lists the applet names of the static busybox (not "busybox" itself).
func BusyboxApplets(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command(BusyboxBinary(t), "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	return applets
}

// WriteBundle writes spec as dir/config.json.
func WriteBundle(t testing.TB, dir string, spec *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries returns the directory holding berthd, berth-shim and
// berth-runtime: $BERTH_BIN_DIR (set by `make test`) or a fresh build.
func Binaries(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("BERTH_BIN_DIR"); d != "" {
		return d
	}
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		// As the Makefile does: berth-runtime needs cgo for its nsenter constructor.
		cmd := exec.Command("make", "build")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			buildDir = string(out)
			return
		}
		buildDir = filepath.Join(root, "bin")
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v\n%s", buildErr, buildDir)
	}
	return buildDir
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
