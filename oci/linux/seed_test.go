package linux

import (
	"debug/elf"
	"testing"
)

// TestStaticSelf: what the auxiliary vector says of this test binary is what
// its program headers say (a PT_INTERP segment: a loader is needed).
func TestStaticSelf(t *testing.T) {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	interp := false
	for _, p := range f.Progs {
		interp = interp || p.Type == elf.PT_INTERP
	}
	if got := staticSelf(); got == interp {
		t.Errorf("staticSelf() = %v, but the binary has PT_INTERP = %v", got, interp)
	}
}
