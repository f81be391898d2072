package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/fixtures"
)

type entry struct {
	name, link, body string
	typ              byte
	mode             int64
	major, minor     int64
}

func layer(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)),
			Devmajor: e.major, Devminor: e.minor}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func TestApplyFilesLinksWhiteouts(t *testing.T) {
	fixtures.RequireRoot(t) // chown, mknod of whiteouts, trusted.* xattrs
	dir := t.TempDir()
	data := layer(t,
		entry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "etc/hosts", typ: tar.TypeReg, body: "127.0.0.1 localhost\n"},
		entry{name: "bin/tool", typ: tar.TypeReg, body: "#!", mode: 0o4755},
		entry{name: "bin/alias", typ: tar.TypeSymlink, link: "tool"},
		entry{name: "bin/hard", typ: tar.TypeLink, link: "bin/tool"},
		entry{name: "var/.wh.cache", typ: tar.TypeReg},
		entry{name: "opt/.wh..wh..opq", typ: tar.TypeReg},
	)
	d, n, err := Apply(context.Background(), dir, bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.FromBytes(data); d != want || n != int64(len(data)) {
		t.Fatalf("diff id %s (%d bytes), want %s (%d)", d, n, want, len(data))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/hosts")); string(b) != "127.0.0.1 localhost\n" {
		t.Fatalf("etc/hosts: %q", b)
	}
	fi, _ := os.Stat(filepath.Join(dir, "bin/tool"))
	if fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("setuid bit lost: %v", fi.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin/alias")); l != "tool" {
		t.Fatalf("symlink: %q", l)
	}
	var st1, st2 unix.Stat_t
	unix.Stat(filepath.Join(dir, "bin/tool"), &st1)
	unix.Stat(filepath.Join(dir, "bin/hard"), &st2)
	if st1.Ino != st2.Ino {
		t.Fatal("hard link is not a hard link")
	}
	var wst unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "var/cache"), &wst); err != nil || wst.Mode&unix.S_IFMT != unix.S_IFCHR || wst.Rdev != 0 {
		t.Fatalf("whiteout: %+v %v", wst, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "opt"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque xattr: %q %v", buf[:n], err)
	}
}

func TestApplyRefusesEscapes(t *testing.T) {
	fixtures.RequireRoot(t)
	cases := map[string][]entry{
		"dotdot":   {{name: "../evil", typ: tar.TypeReg, body: "x"}},
		"absolute": {{name: "/etc/evil", typ: tar.TypeReg, body: "x"}},
		"hardlink-out": {
			{name: "link", typ: tar.TypeLink, link: "../../etc/passwd"},
		},
		// Whiteouts of ".." and "." would remove the directory above the layer
		// (every other layer with it) or the layer's own (found by FuzzApply).
		"whiteout-dotdot": {{name: ".wh...", typ: tar.TypeReg}},
		"whiteout-dot":    {{name: "a/.wh..", typ: tar.TypeReg}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			outer := t.TempDir()
			dir := filepath.Join(outer, "layer")
			os.Mkdir(dir, 0o755)
			_, _, err := Apply(context.Background(), dir, bytes.NewReader(layer(t, entries...)), 0)
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			if _, err := os.Stat(filepath.Join(outer, "evil")); err == nil {
				t.Fatal("wrote outside the layer")
			}
		})
	}
}

// Device nodes in a layer are created as they are (Docker and containerd do).
func TestApplyDeviceNodes(t *testing.T) {
	fixtures.RequireRoot(t)
	dir := t.TempDir()
	data := layer(t,
		entry{name: "dev", typ: tar.TypeDir, mode: 0o755},
		entry{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		entry{name: "dev/loop7", typ: tar.TypeBlock, major: 7, minor: 7, mode: 0o660},
	)
	if _, _, err := Apply(context.Background(), dir, bytes.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		typ, perm    uint32
		major, minor uint32
	}{"dev/null": {unix.S_IFCHR, 0o666, 1, 3}, "dev/loop7": {unix.S_IFBLK, 0o660, 7, 7}} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != want.typ || st.Mode&0o777 != want.perm || unix.Major(st.Rdev) != want.major || unix.Minor(st.Rdev) != want.minor {
			t.Fatalf("%s: mode %o rdev %d:%d", name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
}

// A symlink in the layer pointing out of it must not carry later entries out.
func TestApplySymlinkCannotEscape(t *testing.T) {
	fixtures.RequireRoot(t)
	outer := t.TempDir()
	dir := filepath.Join(outer, "layer")
	os.Mkdir(dir, 0o755)
	victim := filepath.Join(outer, "victim")
	os.Mkdir(victim, 0o755)
	data := layer(t,
		entry{name: "escape", typ: tar.TypeSymlink, link: victim},
		entry{name: "escape/pwned", typ: tar.TypeReg, body: "x"},
		entry{name: "up", typ: tar.TypeSymlink, link: "../../.."},
		entry{name: "up/pwned2", typ: tar.TypeReg, body: "x"},
	)
	if _, _, err := Apply(context.Background(), dir, bytes.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(victim, "pwned")); err == nil {
		t.Fatal("a symlink carried a write outside the layer")
	}
	if _, err := os.Stat(filepath.Join(outer, "pwned2")); err == nil {
		t.Fatal("a relative symlink carried a write outside the layer")
	}
}
