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

// A bad file is refused with the key and the line at fault.
func TestErrorsNameTheLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	for _, c := range []struct{ content, want string }{
		{"root = \"/x\"\nroots = \"/y\"\n", p + ":2: unknown key roots"},
		{"root = \"/x\"\n[runtimes.runc]\npaht = \"/r\"\n", p + ":3: unknown key runtimes.runc.paht"},
		{"\n\nlog_level = \"loud\"\n", p + `:3: log_level "loud": want debug, info, warn or error`},
		{"shim_timeout = \"soon\"\n", p + ":1:"},
		{"cni_default_subnet = \"10.88.0.0\"\n", p + ":1: cni_default_subnet"},
		{"metrics_address = \"9324\"\n", p + ":1: metrics_address"},
		{"debug_address = \"0.0.0.0:6060\"\n", p + ":1: debug_address"},
		{"log_format = \"xml\"\n", p + ":1: log_format"},
		{"root = \n", p + ":1:"},
	} {
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p, true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.content, err, c.want)
		}
	}
}

// FuzzLoad: any file berthd is pointed at either loads, valid, or is refused
// with an error that names it; nothing panics.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(Default().TOML()))
	if b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "config.toml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("root = \"/x\"\nroots = 1\n[runtimes.runc]\npath = 3\n"))
	f.Add([]byte("shim_timeout = \"-5s\"\nmetrics_address = \"[::1]:9\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, true)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded but invalid: %v", err)
		}
	})
}
