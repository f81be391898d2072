package dockerapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
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
func (pruneRecorder) DiskUsage(context.Context) ([]buildkit.CacheRecord, error)    { return nil, nil }
func (pruneRecorder) Build(context.Context, buildkit.BuildOptions) (string, error) { return "", nil }
func (pruneRecorder) Upload(context.Context, string, io.Reader) error              { return nil }
func (pruneRecorder) Cancel(string)                                                {}
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
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options %+v, want %+v (reserved-space wins over its old name keep-storage)", got, want)
	}
	// The cache's fields become BuildKit's filters, all to match.
	_, got = prune(`filters={"id":["ab.c"],"type":["regular"],"inuse":[""],"description":["mount%20/%20from%20exec"],"unused-for":["1h"]}`)
	want = buildkit.PruneOptions{Until: time.Hour, Filters: []string{`description=="mount / from exec"`, `id~="^ab\\.c"`, "inuse", `type=="regular"`}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filters: options %+v, want %+v", got, want)
	}
	var body struct {
		CachesDeleted  []string
		SpaceReclaimed int64
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || strings.Join(body.CachesDeleted, ",") != "r1,r2" || body.SpaceReclaimed != 15 {
		t.Errorf("answer %s (%v)", w.Body, err)
	}
	for _, q := range []string{"keep-storage=lots", "max-used-space=-1", `filters={"until":["yesterday"]}`, `filters={"colour":["red"]}`,
		`filters={"type":["regular","internal"]}`, `filters={"until":["1h"],"unused-for":["2h"]}`, `filters={"mutable":[""]}`} {
		w, got := prune(q)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"message"`) {
			t.Errorf("%s: status %d %s, want 400 with Docker's error JSON", q, w.Code, w.Body)
		}
		if !reflect.DeepEqual(got, buildkit.PruneOptions{}) {
			t.Errorf("%s: pruned anyway with %+v", q, got)
		}
	}
}

// buildRecorder stands for BuildKit where /build?version=2's decoding and
// its answer are under test (the real builds are test/e2e's TestBuildKit
// cli-20.10).
type buildRecorder struct {
	pruneRecorder
	got    *buildkit.BuildOptions
	upload *string
}

func (b buildRecorder) Build(_ context.Context, o buildkit.BuildOptions) (string, error) {
	*b.got = o
	if err := o.Trace([]byte{1, 2, 3}); err != nil {
		return "", err
	}
	return "sha256:abc", nil
}

func (b buildRecorder) Upload(_ context.Context, id string, body io.Reader) error {
	data, _ := io.ReadAll(body)
	*b.upload = id + "=" + string(data)
	return nil
}

func TestBuildKitBuild(t *testing.T) {
	post := func(query, body string) (*httptest.ResponseRecorder, buildkit.BuildOptions, string) {
		var got buildkit.BuildOptions
		var upload string
		s := &Server{buildkit: buildRecorder{got: &got, upload: &upload}}
		w := httptest.NewRecorder()
		s.buildImage(w, httptest.NewRequest(http.MethodPost, "/build?version=2&"+query, strings.NewReader(body)))
		return w, got, upload
	}
	w, got, _ := post(`t=a:1&t=b:2&dockerfile=D&target=x&nocache=1&pull=1&platform=linux/amd64&networkmode=none&extrahosts=h:1.2.3.4`+
		`&session=S&remote=client-session&buildid=B&shmsize=64&buildargs={"K":"v"}&labels={"l":"m"}&cachefrom=["c"]&outputs=[{"Type":"local","Attrs":{"dest":"d"}}]`, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got.Dockerfile != "D" || strings.Join(got.Tags, ",") != "a:1,b:2" || got.Target != "x" || !got.NoCache || !got.Pull || got.Platform != "linux/amd64" ||
		got.NetworkMode != "none" || strings.Join(got.ExtraHosts, ",") != "h:1.2.3.4" || got.SessionID != "S" || got.Remote != "client-session" ||
		got.BuildID != "B" || got.ShmSize != 64 || *got.BuildArgs["K"] != "v" || got.Labels["l"] != "m" || got.CacheFrom[0] != "c" ||
		len(got.Outputs) != 1 || got.Outputs[0].Type != "local" || got.Outputs[0].Attrs["dest"] != "d" {
		t.Errorf("options %+v", got)
	}
	// dockerd's stream: the status in base64 (of 1,2,3), then the image's ID.
	if want := `{"aux":"AQID","id":"moby.buildkit.trace"}` + "\n" + `{"aux":{"ID":"sha256:abc"},"id":"moby.image.id"}` + "\n"; w.Body.String() != want {
		t.Errorf("stream %q, want %q", w.Body, want)
	}

	w, _, upload := post("buildid=upload-request:B", "the tar")
	if w.Code != http.StatusOK || upload != "B=the tar" {
		t.Errorf("an upload-request: status %d, handed %q", w.Code, upload)
	}

	for _, q := range []string{"buildargs={bad", `outputs=[{"Type":"local"},{"Type":"tar"}]`, "shmsize=big", "networkmode=container:x", "remote=client-session"} {
		w, got, _ := post(q, "")
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"message"`) {
			t.Errorf("%s: status %d %s, want 400 with Docker's error JSON", q, w.Code, w.Body)
		}
		if got.Trace != nil {
			t.Errorf("%s: built anyway", q)
		}
	}
	w = httptest.NewRecorder()
	(&Server{}).buildImage(w, httptest.NewRequest(http.MethodPost, "/build?version=3", nil))
	if w.Code != http.StatusBadRequest {
		t.Errorf("version=3: status %d, want 400", w.Code)
	}
}
