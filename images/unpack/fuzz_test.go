package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// FuzzApply feeds arbitrary bytes to the layer unpacker, which registries
// control: it may refuse them, but never panic, and never write outside the
// layer's directory. The seeds (run by `make test`) are the hostile cases the
// other tests name; `make fuzz` searches further.
func FuzzApply(f *testing.F) {
	for _, entries := range [][]entry{
		{{name: "etc/hosts", typ: tar.TypeReg, body: "x"}},
		{{name: "../evil", typ: tar.TypeReg, body: "x"}},
		{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}},
		{{name: "link", typ: tar.TypeLink, link: "../../evil"}},
		{{name: "esc", typ: tar.TypeSymlink, link: "/"}, {name: "esc/evil", typ: tar.TypeReg, body: "x"}},
		{{name: "up", typ: tar.TypeSymlink, link: "../.."}, {name: "up/evil", typ: tar.TypeReg, body: "x"}},
		{{name: "a/.wh..wh..opq", typ: tar.TypeReg}, {name: "a/.wh.b", typ: tar.TypeReg}},
		{{name: ".wh...", typ: tar.TypeReg}, {name: "x/.wh.../evil", typ: tar.TypeReg}},
		{{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3}},
	} {
		f.Add(layer(f, entries...))
	}
	f.Add([]byte("not a tar at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fixtures.RequireRoot(t)
		outer := t.TempDir()
		dir := filepath.Join(outer, "layer")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_, _, _ = Apply(context.Background(), dir, bytes.NewReader(data), 0)
		ents, err := os.ReadDir(outer)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Name() != "layer" {
			t.Fatalf("a layer wrote outside its directory: %v", ents)
		}
	})
}
