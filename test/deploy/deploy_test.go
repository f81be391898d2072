// Package deploy checks the files operators install from deploy/.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// unitKeys reads a systemd unit's Key=Value lines (last one wins), by section.
func unitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, section := map[string]string{}, ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, _ := strings.Cut(l, "=")
			keys[section+"."+k] = v
		}
	}
	return keys
}

// The unit keeps containers alive across restarts and tells systemd when
// berthd is ready.
func TestUnitKeys(t *testing.T) {
	k := unitKeys(t, "../../deploy/berthd.service")
	for key, want := range map[string]string{
		"Service.Type":        "notify",
		"Service.KillMode":    "process",
		"Service.Delegate":    "yes",
		"Service.LimitNOFILE": "1048576",
		"Service.TasksMax":    "infinity",
		"Service.ExecStart":   "/usr/local/bin/berthd",
		"Install.WantedBy":    "multi-user.target",
	} {
		if k[key] != want {
			t.Errorf("%s = %q, want %q", key, k[key], want)
		}
	}
}

// systemd's own checker accepts the unit (apt's systemd has it even where
// systemd is not PID 1), with ExecStart pointing at the built berthd.
func TestUnitVerifies(t *testing.T) {
	analyze := fixtures.RequireBinary(t, "systemd-analyze")
	b, err := os.ReadFile("../../deploy/berthd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "berthd.service")
	berthd := filepath.Join(fixtures.Binaries(t), "berthd")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/berthd", berthd)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || strings.Contains(string(out), "berthd.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
