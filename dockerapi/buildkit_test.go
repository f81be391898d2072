package dockerapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/builder/buildkit"
)

// pruneRecorder stands for BuildKit where only the request's decoding is
// under test (the real one is test/e2e's TestBuildKit df-prune).
type pruneRecorder struct{ got *buildkit.PruneOptions }

func (pruneRecorder) ServeConn(context.Context, net.Conn) error { return nil }
func (pruneRecorder) HandleSession(context.Context, http.ResponseWriter, *http.Request) error {
	return nil
}
func (pruneRecorder) DiskUsage(context.Context) ([]buildkit.CacheRecord, error) { return nil, nil }
func (p pruneRecorder) Prune(_ context.Context, o buildkit.PruneOptions) ([]buildkit.CacheRecord, error) {
	*p.got = o
	return []buildkit.CacheRecord{{ID: "r1", Size: 10}, {ID: "r2", Size: 5}}, nil
}

func TestBuildPrune(t *testing.T) {
	prune := func(query string) (*httptest.ResponseRecorder, buildkit.PruneOptions) {
		var got buildkit.PruneOptions
		s := &Server{buildkit: pruneRecorder{got: &got}}
		w := httptest.NewRecorder()
		s.buildPrune(w, httptest.NewRequest(http.MethodPost, "/build/prune?"+query, nil))
		return w, got
	}
	w, got := prune(`all=1&keep-storage=100&reserved-space=200&max-used-space=300&min-free-space=400&filters={"until":["24h"]}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := buildkit.PruneOptions{All: true, Until: 24 * time.Hour, ReservedSpace: 200, MaxUsedSpace: 300, MinFreeSpace: 400}
	if got != want {
		t.Errorf("options %+v, want %+v (reserved-space wins over its old name keep-storage)", got, want)
	}
	var body struct {
		CachesDeleted  []string
		SpaceReclaimed int64
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || strings.Join(body.CachesDeleted, ",") != "r1,r2" || body.SpaceReclaimed != 15 {
		t.Errorf("answer %s (%v)", w.Body, err)
	}
	for _, q := range []string{"keep-storage=lots", "max-used-space=-1", `filters={"until":["yesterday"]}`, `filters={"colour":["red"]}`} {
		w, got := prune(q)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"message"`) {
			t.Errorf("%s: status %d %s, want 400 with Docker's error JSON", q, w.Code, w.Body)
		}
		if got != (buildkit.PruneOptions{}) {
			t.Errorf("%s: pruned anyway with %+v", q, got)
		}
	}
}
