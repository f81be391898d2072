// Package layering checks the house rule of ARCHITECTURE.md: dependencies
// point downwards only, and the wiring (daemon/) is imported by cmd/berthd alone.
package layering

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-runtime/berth/"

// floors: a package may import packages on lower floors, or its own top-level
// folder's. Folders on one floor do not import each other.
var floors = map[string]int{
	"internal": 0,
	"oci":      1, "images": 1, "cni": 1,
	"shim": 2, "sandbox": 2,
	"containers": 3,
	"builder":    4,
	"cri":        5, "dockerapi": 5, "metrics": 5,
	"daemon": 6,
	"cmd":    7,
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
