package buildkit

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestSolveRequest: /build?version=2's options become the Dockerfile
// frontend's attributes as dockerd makes them, and what BuildKit cannot
// build is refused before it starts.
func TestSolveRequest(t *testing.T) {
	v := "1"
	req, err := solveRequest(BuildOptions{Dockerfile: "sub/Dockerfile.dev", Tags: []string{"a:1", "b:2"}, Target: "final", NoCache: true, Pull: true,
		BuildArgs: map[string]*string{"X": &v, "UNSET": nil, "BUILDKIT_INLINE_CACHE": &v}, Labels: map[string]string{"team": "node"},
		CacheFrom: []string{"c:1", "c:2"}, Platform: "linux/amd64", NetworkMode: "host", ExtraHosts: []string{"db:10.0.0.2"}, ShmSize: 1 << 20,
		Remote: RemoteSession, SessionID: "sess"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"filename": "sub/Dockerfile.dev", "target": "final", "no-cache": "", "image-resolve-mode": "pull",
		"build-arg:X": "1", "build-arg:BUILDKIT_INLINE_CACHE": "1", "label:team": "node", "cache-from": "c:1,c:2", "platform": "linux/amd64",
		"force-network-mode": "host", "add-hosts": "db=10.0.0.2", "shm-size": "1048576"}
	for k, w := range want {
		if got, ok := req.FrontendAttrs[k]; !ok || got != w {
			t.Errorf("attr %s = %q (set %v), want %q", k, got, ok, w)
		}
	}
	if _, ok := req.FrontendAttrs["build-arg:UNSET"]; ok {
		t.Error("a build arg without a value became an attribute")
	}
	if len(req.Exporters) != 1 || req.Exporters[0].Type != "moby" || req.Exporters[0].Attrs["name"] != "a:1,b:2" {
		t.Errorf("exporters %v, want moby named a:1,b:2", req.Exporters)
	}
	if req.Session != "sess" || len(req.Entitlements) != 1 || len(req.Cache.Exports) != 1 || req.Cache.Exports[0].Type != "inline" {
		t.Errorf("session %q, entitlements %v, cache exports %v", req.Session, req.Entitlements, req.Cache.Exports)
	}

	local, err := solveRequest(BuildOptions{Outputs: []Output{{Type: "local"}}, Remote: "https://example.invalid/repo.git"})
	if err != nil || len(local.Exporters) != 1 || local.Exporters[0].Type != "local" || local.FrontendAttrs["context"] != "https://example.invalid/repo.git" {
		t.Errorf("a local output with a git context: %v %v", local, err)
	}
	if none, err := solveRequest(BuildOptions{Outputs: []Output{{Type: "cacheonly"}}}); err != nil || len(none.Exporters) != 0 {
		t.Errorf("cacheonly: exporters %v, %v", none.Exporters, err)
	}

	for name, o := range map[string]BuildOptions{
		"two outputs":         {Outputs: []Output{{Type: "local"}, {Type: "tar"}}},
		"container network":   {NetworkMode: "container:x"},
		"bad platform":        {Platform: "linux/amd64/v9/extra"},
		"bad extra host":      {ExtraHosts: []string{"nohost"}},
		"session-less remote": {Remote: RemoteSession},
		"unknown remote":      {Remote: "somewhere"},
	} {
		if err := o.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want an invalid argument", name, err)
		}
	}
}

// TestBuildsUpload: a build and the upload of its context meet whichever
// comes first; the uploader returns when the build has read the body, with
// the build's error; Cancel reaches a running build only.
func TestBuildsUpload(t *testing.T) {
	for _, buildFirst := range []bool{true, false} {
		var b builds
		got := make(chan string, 1)
		build := func() {
			body, done, err := b.awaitUpload(context.Background(), "id1")
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			data, _ := io.ReadAll(body)
			done(errors.New("read it"))
			got <- string(data)
		}
		if buildFirst {
			go build()
			time.Sleep(10 * time.Millisecond)
		} else {
			go func() { time.Sleep(10 * time.Millisecond); build() }()
		}
		if err := b.upload(context.Background(), "id1", strings.NewReader("context tar")); err == nil || err.Error() != "read it" {
			t.Errorf("build first %v: the uploader got %v, want the build's own error", buildFirst, err)
		}
		if s := <-got; s != "context tar" {
			t.Errorf("build first %v: the build read %q", buildFirst, s)
		}
		if len(b.uploads) != 0 {
			t.Errorf("build first %v: %d rendezvous left", buildFirst, len(b.uploads))
		}
	}

	var b builds
	ctx, cancel := context.WithCancel(context.Background())
	forget := b.add("running", cancel)
	b.cancel("unknown")
	if ctx.Err() != nil {
		t.Fatal("cancelling an unknown build cancelled another")
	}
	b.cancel("running")
	if ctx.Err() == nil {
		t.Error("Cancel did not reach the running build")
	}
	forget()
	if len(b.cancels) != 0 {
		t.Error("a finished build stayed recorded")
	}
}
