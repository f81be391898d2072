package dockerapi

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestDetachReader(t *testing.T) {
	for _, tc := range []struct {
		in, keys, out string
		detached      bool
	}{
		{"hello", "ctrl-p,ctrl-q", "hello", false},
		{"ab\x10\x11cd", "ctrl-p,ctrl-q", "ab", true},
		{"a\x10b\x10\x10\x11", "ctrl-p,ctrl-q", "a\x10b\x10", true}, // a lone ^P passes, ^P^P^Q detaches
		{"x\x10", "ctrl-p,ctrl-q", "x\x10", false},                  // a start of the keys at EOF is passed on
		{"quit", "q", "", true},
		{"abc", "ctrl-a", "abc", false},
	} {
		keys, err := parseDetachKeys(tc.keys)
		if err != nil {
			t.Fatal(err)
		}
		// One byte at a time too: the keys may come split across reads.
		for _, r := range []io.Reader{bytes.NewReader([]byte(tc.in)), iotest.OneByteReader(bytes.NewReader([]byte(tc.in)))} {
			var out bytes.Buffer
			_, err := io.Copy(&out, &detachReader{r: r, keys: keys})
			if out.String() != tc.out || errors.Is(err, errDetached) != tc.detached {
				t.Errorf("%q with keys %q: %q, %v; want %q, detached %v", tc.in, tc.keys, out.String(), err, tc.out, tc.detached)
			}
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab"} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("detach keys %q accepted", bad)
		}
	}
}
