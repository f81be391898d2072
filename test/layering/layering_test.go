// Package layering checks the house rule of ARCHITECTURE.md: dependencies
// point downwards only, and the wiring (daemon/) is imported by cmd/berthd alone.
package layering

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/berth-runtime/berth/"

// floors: a package may import packages on lower floors, or its own top-level
// folder's. Folders on one floor do not import each other.
var floors = map[string]int{
	"internal": 0,
	"oci":      1, "images": 1, "cni": 1, "cdi": 1, "nri": 1,
	"shim": 2, "sandbox": 2,
	"containers": 3,
	// engine is Docker's object model; builder runs builds on it (BuildKit's worker next).
	"engine":  4,
	"builder": 5,
	"cri":     6, "dockerapi": 6, "metrics": 6,
	"daemon": 7,
	"cmd":    8,
	// cli is a client of the Docker API and the CRI: it imports none of the daemon's packages.
	"cli": 0,
}

func TestImportsPointDown(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from := strings.TrimPrefix(p.ImportPath, module)
		fromTop := top(from)
		if fromTop == "test" {
			continue // tests and benchmarks may use anything
		}
		fromFloor, ok := floors[fromTop]
		if !ok {
			t.Errorf("%s: top-level folder %q has no floor in this test: give it one", from, fromTop)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := strings.TrimPrefix(imp, module)
			toTop := top(to)
			checked++
			if toTop == "test" {
				t.Errorf("%s imports test code %s", from, to)
				continue
			}
			if toTop == "daemon" && from != "cmd/berthd" {
				t.Errorf("%s imports the wiring (%s); only cmd/berthd may", from, to)
			}
			if toTop != fromTop && floors[toTop] >= fromFloor {
				t.Errorf("%s (floor %d) imports %s (floor %d): dependencies point down only", from, fromFloor, to, floors[toTop])
			}
		}
	}
	if checked == 0 {
		t.Fatal("no imports checked")
	}
}

func top(pkg string) string {
	first, _, _ := strings.Cut(pkg, "/")
	return first
}

// translateOnly are the front ends that translate and delegate, and what
// they must not import: what they need of those lies below them.
var translateOnly = map[string][]string{
	// dockerapi reaches Docker's objects through engine/ alone: no process,
	// no network, no store of its own, no disk, no kernel.
	"dockerapi": {"os", "os/exec", "syscall", "golang.org/x/sys/unix", "go.etcd.io/bbolt",
		module + "cni", module + "sandbox", module + "containers", module + "shim", module + "oci", module + "oci/linux",
		module + "images/snapshot"},
}

func TestFrontsTranslateOnly(t *testing.T) {
	for pkg, banned := range translateOnly {
		out, err := exec.Command("go", "list", "-f", "{{join .Imports \"\\n\"}}", module+pkg).Output()
		if err != nil {
			t.Skipf("go list: %v", err)
		}
		imports := strings.Fields(string(out))
		if len(imports) == 0 {
			t.Fatalf("%s: no imports listed", pkg)
		}
		for _, b := range banned {
			if slices.Contains(imports, b) {
				t.Errorf("%s imports %s: it translates and delegates; what needs %s belongs below it", pkg, b, b)
			}
		}
	}
}

// maxLines is the size past which a source file must say, in its opening
// comment, why it is one piece ("kept whole: ..."); a newcomer finds a
// rule by its file's name, which a long file of many concerns hides.
const maxLines = 400

func TestFilesStaySmall(t *testing.T) {
	root := "../.."
	checked := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "test") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		checked++
		n, reason := linesAndReason(t, p)
		if n > maxLines && !reason {
			rel, _ := filepath.Rel(root, p)
			t.Errorf("%s has %d lines (more than %d): split it where it mixes concerns, or say why it is one with a \"kept whole:\" line in its opening comment", rel, n, maxLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}

// linesAndReason counts p's lines and says whether a comment before its
// package clause says "kept whole:". Generated code (Go's "Code generated
// ... DO NOT EDIT." line) is read by no one: it needs no reason.
func linesAndReason(t *testing.T, p string) (int, bool) {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, reason, header := 0, false, true
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "package ") {
			header = false
		}
		if header && strings.HasPrefix(line, "//") && strings.Contains(strings.ToLower(line), "kept whole:") {
			reason = true
		}
		if header && strings.HasPrefix(line, "// Code generated ") && strings.HasSuffix(line, " DO NOT EDIT.") {
			reason = true
		}
	}
	return n, reason
}
