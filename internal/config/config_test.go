package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if c, err := Load(filepath.Join(dir, "missing.toml"), false); err != nil || c.CRISocket != Default().CRISocket {
		t.Fatalf("missing default file: %+v %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml"), true); err == nil {
		t.Fatal("missing named file: no error")
	}
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte("root = \"/x\"\n[runtimes.runc]\npath = \"/usr/sbin/runc\"\n"), 0o644)
	c, err := Load(p, true)
	if err != nil || c.Root != "/x" || c.Runtimes["runc"].Path != "/usr/sbin/runc" || c.State != "/run/berth" {
		t.Fatalf("got %+v %v", c, err)
	}
	os.WriteFile(p, []byte("roots = \"/x\"\n"), 0o644)
	if _, err := Load(p, true); err == nil || !strings.Contains(err.Error(), "roots") {
		t.Fatalf("unknown key: %v", err)
	}
	// The printed defaults load back to the defaults.
	os.WriteFile(p, []byte(Default().TOML()), 0o644)
	if c, err := Load(p, true); err != nil || c.TOML() != Default().TOML() {
		t.Fatalf("round trip: %v", err)
	}
}

// The documented file in deploy/ is a valid config, with the defaults.
func TestDeployConfigLoads(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "deploy", "config.toml"), true)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.CRISocket != d.CRISocket || c.Root != d.Root || c.RegistryConfigDir != d.RegistryConfigDir || len(c.PinnedImages) != 0 {
		t.Fatalf("deploy/config.toml differs from the defaults: %+v", c)
	}
}
