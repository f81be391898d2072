package shim

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCRILogFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLogLine+10)
	w.copyStream("stdout", strings.NewReader("hello\n\nworld\n"+long+"\ntail-no-newline"))
	w.copyStream("stderr", strings.NewReader("oops\n"))
	w.Close()

	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	re := regexp.MustCompile(`^(\S+) (stdout|stderr) ([PF]) (.*)$`)
	type entry struct{ stream, tag, text string }
	var got []entry
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI log line: %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("bad timestamp %q: %v", m[1], err)
		}
		got = append(got, entry{m[2], m[3], m[4]})
	}
	want := []entry{
		{"stdout", "F", "hello"}, {"stdout", "F", ""}, {"stdout", "F", "world"},
		{"stdout", "P", long[:maxLogLine]}, {"stdout", "F", long[maxLogLine:]},
		{"stdout", "P", "tail-no-newline"}, {"stderr", "F", "oops"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
