package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The recordings under testdata/protocol/v1 are messages as berthd and shims
// of protocol version 1 wrote them. They are never regenerated: a change to
// protocol.go that an old peer would misread makes one of these tests fail.
const recorded = "testdata/protocol/v1"

// decodeStrict decodes one recorded message into v, refusing fields v does not
// have (a renamed or removed field), and checks that v encodes back to the
// same JSON (a field whose type or meaning changed).
func decodeStrict(t *testing.T, line []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("recorded %s no longer decodes into %T: %v", line, v, err)
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(line, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("recorded %s\nencodes today as %s", line, again)
	}
}

func recordedLines(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recorded, name))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		out = append(out, l)
	}
	return out
}

func TestProtocolRecordedRequests(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range recordedLines(t, "requests.jsonl") {
		var r Request
		decodeStrict(t, l, &r)
		if r.Version > ProtocolVersion {
			t.Fatalf("recorded %s: version %d is newer than this shim's", l, r.Version)
		}
		if err := checkVersion(r); err != nil {
			t.Fatalf("recorded %s refused: %v", l, err)
		}
		seen[r.Op] = true
	}
	// Every op a shim serves has a recording, so a new op cannot land without one.
	for op := range opSince {
		if !seen[op] {
			t.Errorf("op %q has no recorded request in %s/requests.jsonl", op, recorded)
		}
	}
	// What this berthd sends for each op needs no more than the version that introduced it.
	for op, since := range opSince {
		if v := requestVersion(op); v != since || v > ProtocolVersion {
			t.Errorf("op %q: request version %d, introduced in %d, protocol %d", op, v, since, ProtocolVersion)
		}
	}
}

func TestProtocolRecordedResponsesAndFiles(t *testing.T) {
	for _, l := range recordedLines(t, "responses.jsonl") {
		var r Response
		decodeStrict(t, l, &r)
	}
	// The meaning of what berthd reads from a response, checked on two recordings.
	lines := recordedLines(t, "responses.jsonl")
	var exited, execd Response
	decodeStrict(t, lines[2], &exited)
	decodeStrict(t, lines[3], &execd)
	if exited.Status.Exit == nil || exited.Status.Exit.Code != 137 || exited.Status.Exit.Reason != "OOMKilled" {
		t.Fatalf("exit of a recorded response: %+v", exited.Status.Exit)
	}
	if execd.Exec == nil || string(execd.Exec.Stdout) != "hi\n" {
		t.Fatalf("exec result of a recorded response: %+v", execd.Exec)
	}

	// exit.json is read by berthds of any later age.
	for _, l := range recordedLines(t, ExitFile) {
		var e Exit
		decodeStrict(t, l, &e)
	}
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(recorded, ExitFile))
	if err := os.WriteFile(filepath.Join(dir, ExitFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := ReadExit(dir)
	if err != nil || e.Code != 1 || e.Reason != "Error" || !e.At.Equal(time.Date(2026, 11, 30, 10, 5, 0, 5e8, time.UTC)) {
		t.Fatalf("recorded exit file: %+v %v", e, err)
	}
	for _, l := range recordedLines(t, ConfigFile) {
		var c Config
		decodeStrict(t, l, &c)
	}
}

func TestProtocolRecordedFrames(t *testing.T) {
	// berthd → shim: what a shim of this version must still read.
	b, err := os.ReadFile(filepath.Join(recorded, "frames-to-shim.bin"))
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var types []byte
	var payloads []string
	for r.Len() > 0 {
		typ, p, err := readFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
		payloads = append(payloads, string(p))
	}
	if string(types) != string([]byte{frameStdin, frameResize, frameStdinClose}) || payloads[0] != "ls\n" {
		t.Fatalf("frames to the shim: %q %q", types, payloads)
	}
	if sz, err := parseResize([]byte(payloads[1])); err != nil || sz != (Size{Height: 24, Width: 80}) {
		t.Fatalf("recorded resize: %+v %v", sz, err)
	}

	// shim → berthd: this berthd's client reads a recorded stream end to end.
	var stdout, stderr bytes.Buffer
	code, err := fakeShim(t, "frames-from-shim.bin").ExecStream(context.Background(),
		StreamOpts{Args: []string{"sh"}, Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 3 || stdout.String() != "hi\n" || stderr.String() != "oops" {
		t.Fatalf("recorded stream: code %d, %v, stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
	}
	_, err = fakeShim(t, "frames-error.bin").Attach(context.Background(), StreamOpts{})
	if err == nil || !strings.Contains(err.Error(), "the container has exited") {
		t.Fatalf("recorded error frame: %v", err)
	}
}

// A shim of version 1 before responses carried "v" (the first recorded
// response) is taken as version 1.
func TestProtocolHelloOldShim(t *testing.T) {
	c := fakeShimAnswer(t, recordedLines(t, "responses.jsonl")[0])
	st, v, err := c.Hello(context.Background())
	if err != nil || v != 1 || st.Pid != 4242 {
		t.Fatalf("hello to an old shim: %+v %d %v", st, v, err)
	}
}

// fakeShim stands in for a shim of an older age (one that this build no longer
// produces): it reads one request and answers with a recorded byte stream.
func fakeShim(t *testing.T, recording string) *Client {
	b, err := os.ReadFile(filepath.Join(recorded, recording))
	if err != nil {
		t.Fatal(err)
	}
	return fakeShimAnswer(t, b)
}

func fakeShimAnswer(t *testing.T, answer []byte) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "shim.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req Request
		if json.NewDecoder(bufio.NewReader(c)).Decode(&req) == nil {
			_, _ = c.Write(answer)
		}
	}()
	return &Client{Socket: sock}
}

// FuzzFrames: whatever a peer sends, reading frames neither panics nor
// allocates past the frame limit.
func FuzzFrames(f *testing.F) {
	for _, name := range []string{"frames-from-shim.bin", "frames-to-shim.bin", "frames-error.bin"} {
		b, err := os.ReadFile(filepath.Join(recorded, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{'o', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			_, p, err := readFrame(r)
			if err != nil {
				return
			}
			if len(p) > maxFrame {
				t.Fatalf("frame of %d bytes", len(p))
			}
			if sz, err := parseResize(p); err == nil && len(p) != 4 {
				t.Fatalf("resize %+v from %d bytes", sz, len(p))
			}
		}
	})
}

// FuzzRequest: a request that decodes is either refused by version or has an
// op the dispatcher names; nothing panics.
func FuzzRequest(f *testing.F) {
	for _, l := range recordedLines(f, "requests.jsonl") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if json.Unmarshal(data, &r) != nil {
			return
		}
		_ = checkVersion(r)
		_ = requestVersion(r.Op)
	})
}

// TestProtocolV2Recorded: version 2's exec requests (env, cwd, user) decode
// as they were written, say "v": 2 — which a version 1 shim refuses rather
// than run the process without them — and a request that sets none of them
// still says its op's version.
func TestProtocolV2Recorded(t *testing.T) {
	b, err := os.ReadFile("testdata/protocol/v2/requests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r Request
		decodeStrict(t, l, &r)
		if r.Version != 2 || r.version() != 2 {
			t.Errorf("recorded %s: version %d, needs %d; want 2", l, r.Version, r.version())
		}
		if err := checkVersion(r); err != nil {
			t.Errorf("recorded %s refused: %v", l, err)
		}
		old := r
		old.Version = 2
		if err := checkVersionOf(old, 1); err == nil || !strings.Contains(err.Error(), "needs shim protocol version 2") {
			t.Errorf("a version 1 shim took %s: %v", l, err)
		}
	}
	if v := (Request{Op: OpExec, Args: []string{"true"}}).version(); v != 1 {
		t.Errorf("a plain exec says version %d, want 1 (old shims serve it)", v)
	}
}
