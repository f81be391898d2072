package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// berthd killed (SIGKILL) in the middle of a pull: after the restart no
// half-written blob, unpacked layer or image record is left, and the pull
// then succeeds.
func TestKillDuringPull(t *testing.T) {
	d := startDaemon(t)
	backend := fixtures.Registry(t)
	fixtures.PushBusybox(t, backend)
	var stall atomic.Bool
	var blobGets atomic.Int32
	stall.Store(true)
	stalled := make(chan struct{}, 1)
	front := fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		// The first blob is the config, read whole; the layer comes next.
		if stall.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && blobGets.Add(1) > 1 {
			// A layer's first bytes, then nothing: the pull is mid-layer.
			w.WriteHeader(http.StatusOK)
			w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
			w.(http.Flusher).Flush()
			select {
			case stalled <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	})
	ref := front + "/library/busybox:latest"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil)
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("the pull never reached a layer")
	}
	time.Sleep(100 * time.Millisecond) // let the stalled bytes reach the store
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
	stall.Store(false)
	left := 0
	for _, dir := range []string{"content/ingest", "snapshots/tmp"} {
		ents, _ := os.ReadDir(filepath.Join(d.root, dir))
		left += len(ents)
	}
	if left == 0 {
		t.Fatal("the kill left no half-written file: the test proves nothing")
	}
	d.start(fixtures.Binaries(t))

	for _, dir := range []string{"content/ingest", "snapshots/tmp", "snapshots/layers"} {
		if ents, _ := os.ReadDir(filepath.Join(d.root, dir)); len(ents) != 0 {
			t.Errorf("%s holds %d entries after the restart", dir, len(ents))
		}
	}
	if imgs, err := d.is.ListImages(ctx, nil); err != nil || len(imgs) != 0 {
		t.Fatalf("images after the restart: %v %v", imgs, err)
	}
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatalf("pull after the restart: %v", err)
	}
}
