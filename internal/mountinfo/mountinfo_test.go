package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/var/lib/berth`: "/var/lib/berth", `/a\040b\011c`: "/a b\tc", `/x\`: `/x\`, `/y\04`: `/y\04`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
