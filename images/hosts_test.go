package images

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/fixtures"
)

func writeHosts(t *testing.T, dir, registry, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, registry), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, registry, "hosts.toml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A mirror whose API lives under a path: "/mirror" gets /v2 added as
// containerd does; with override_path the URL's path is the API root itself.
func TestMirrorPaths(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	fixtures.PushBusybox(t, backend)
	var mu sync.Mutex
	var seen []string
	front := fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		for _, prefix := range []string{"/mirror/v2", "/raw"} {
			if rest, ok := strings.CutPrefix(r.URL.Path, prefix); ok {
				r.URL.Path = "/v2" + rest
				next.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
	for _, c := range []struct{ url, override string }{
		{"http://" + front + "/mirror", "false"},
		{"http://" + front + "/raw", "true"},
	} {
		dir := t.TempDir()
		writeHosts(t, dir, "registry.test", fmt.Sprintf("server = \"https://127.0.0.1:1\"\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = %s\n", c.url, c.override))
		s := newService(t)
		s.SetRegistryConfigDir(dir)
		mu.Lock()
		seen = nil
		mu.Unlock()
		if _, err := s.Pull(context.Background(), "registry.test/library/busybox:latest", nil); err != nil {
			t.Fatalf("%s (override_path %s): %v (paths %v)", c.url, c.override, err, seen)
		}
		mu.Lock()
		for _, p := range seen {
			if strings.HasPrefix(p, "/v2") {
				t.Errorf("%s: a request went to %s, outside the API root", c.url, p)
			}
		}
		mu.Unlock()
	}
}

// A registry that requires client certificates: hosts.toml's client (a pair,
// or one file with both) and Docker's client.cert/client.key.
func TestClientCertificates(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	fixtures.PushBusybox(t, backend)
	caPEM, certPEM, keyPEM := testCerts(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	serverCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	front := fixtures.Front(t, backend, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		func(w http.ResponseWriter, r *http.Request, next http.Handler) { next.ServeHTTP(w, r) })
	files := t.TempDir()
	for n, b := range map[string][]byte{"ca.pem": caPEM, "client.pem": certPEM, "client.key": keyPEM, "both.pem": append(append([]byte{}, certPEM...), keyPEM...)} {
		os.WriteFile(filepath.Join(files, n), b, 0o600)
	}
	ref := front + "/library/busybox:latest"
	pull := func(dir string) error {
		s := newService(t)
		s.SetRegistryConfigDir(dir)
		_, err := s.Pull(context.Background(), ref, nil)
		return err
	}
	noClient := t.TempDir()
	writeHosts(t, noClient, front, fmt.Sprintf("[host.\"https://%s\"]\n  ca = %q\n", front, filepath.Join(files, "ca.pem")))
	if err := pull(noClient); err == nil {
		t.Fatal("pull without a client certificate succeeded")
	}
	for _, client := range []string{
		fmt.Sprintf("[%q, %q]", filepath.Join(files, "client.pem"), filepath.Join(files, "client.key")),
		fmt.Sprintf("%q", filepath.Join(files, "both.pem")),
		fmt.Sprintf("[[%q, %q]]", filepath.Join(files, "client.pem"), filepath.Join(files, "client.key")),
	} {
		dir := t.TempDir()
		writeHosts(t, dir, front, fmt.Sprintf("[host.\"https://%s\"]\n  ca = %q\n  client = %s\n", front, filepath.Join(files, "ca.pem"), client))
		if err := pull(dir); err != nil {
			t.Errorf("client = %s: %v", client, err)
		}
	}
	docker := t.TempDir()
	os.MkdirAll(filepath.Join(docker, front), 0o755)
	for n, b := range map[string][]byte{"ca.crt": caPEM, "client.cert": certPEM, "client.key": keyPEM} {
		os.WriteFile(filepath.Join(docker, front, n), b, 0o600)
	}
	if err := pull(docker); err != nil {
		t.Errorf("Docker's client.cert/client.key: %v", err)
	}
	bad := t.TempDir()
	writeHosts(t, bad, front, fmt.Sprintf("[host.\"https://%s\"]\n  client = [1, 2]\n", front))
	if err := pull(bad); err == nil || !strings.Contains(err.Error(), "client") {
		t.Errorf("a malformed client entry: %v", err)
	}
}

// Credentials from the config file go to their host when a pull brings
// none; a pull's own credentials go to the registry, never to a mirror.
func TestConfiguredCredentials(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	fixtures.PushBusybox(t, backend)
	var mu sync.Mutex
	users := map[string]string{} // front → user seen
	basic := func(name string) func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			u, p, ok := r.BasicAuth()
			if ok {
				mu.Lock()
				users[name] = u
				mu.Unlock()
			}
			if !ok || p != "pw-"+u {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		}
	}
	upstream := fixtures.Front(t, backend, nil, basic("upstream"))
	s := newService(t)
	ref := upstream + "/library/busybox:latest"
	if _, err := s.Pull(context.Background(), ref, nil); err == nil {
		t.Fatal("anonymous pull succeeded")
	}
	s.SetCredentials(map[string]Auth{upstream: {Username: "conf", Password: "pw-conf"}})
	if _, err := s.Pull(context.Background(), ref, nil); err != nil {
		t.Fatalf("pull with configured credentials: %v", err)
	}
	if _, err := s.Pull(context.Background(), ref, &Auth{Username: "cri", Password: "pw-cri"}); err != nil || users["upstream"] != "cri" {
		t.Fatalf("the pull's own credentials did not win: %v (user %q)", err, users["upstream"])
	}

	// Through a mirror: the CRI credentials stay with the registry.
	mirror := fixtures.Front(t, backend, nil, basic("mirror"))
	dir := t.TempDir()
	writeHosts(t, dir, "registry.test", fmt.Sprintf("server = \"https://127.0.0.1:1\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\"]\n", mirror))
	s.SetRegistryConfigDir(dir)
	if _, err := s.Pull(context.Background(), "registry.test/library/busybox:latest", &Auth{Username: "cri", Password: "pw-cri"}); err == nil {
		t.Fatal("the mirror got the registry's credentials")
	}
	if users["mirror"] != "" {
		t.Fatalf("the mirror saw user %q", users["mirror"])
	}
	s.SetCredentials(map[string]Auth{mirror: {Username: "m", Password: "pw-m"}})
	if _, err := s.Pull(context.Background(), "registry.test/library/busybox:latest", nil); err != nil || users["mirror"] != "m" {
		t.Fatalf("mirror with its own credentials: %v (user %q)", err, users["mirror"])
	}
}

// Transient registry errors are retried; blobs redirected to storage elsewhere are followed.
func TestRetryAndRedirect(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, backend)
	var mu sync.Mutex
	failed := map[string]bool{}
	var redirected int
	front := fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/storage"); ok {
			r.URL.Path = rest
			mu.Lock()
			redirected++
			mu.Unlock()
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/blobs/") || strings.Contains(r.URL.Path, "/manifests/")) {
			mu.Lock()
			first := !failed[r.URL.Path]
			failed[r.URL.Path] = true
			mu.Unlock()
			if first {
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			if strings.Contains(r.URL.Path, "/blobs/") {
				http.Redirect(w, r, "/storage"+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
	s := newService(t)
	if _, err := s.Pull(context.Background(), strings.Replace(ref, backend, front, 1), nil); err != nil {
		t.Fatalf("pull through 503s and redirects: %v", err)
	}
	if redirected == 0 {
		t.Fatal("no blob was redirected")
	}
}

// Docker schema 1 manifests are refused with a clear error.
func TestSchema1Refused(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	ref, _ := name.ParseReference(host+"/library/old:1", name.Insecure)
	m := rawManifest{`{"schemaVersion":1,"name":"library/old","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}`, types.DockerManifestSchema1Signed}
	if err := remote.Put(ref, m); err != nil {
		t.Fatal(err)
	}
	s := newService(t)
	_, err := s.Pull(context.Background(), ref.String(), nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "schema 1") {
		t.Fatalf("schema 1 pull: %v", err)
	}
}

type rawManifest struct {
	body string
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return []byte(m.body), nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// Pinned images are marked so, across pulls.
func TestPinnedImages(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"true"}}), host, "library/other:1")
	s := newService(t)
	if err := s.SetPinned([]string{ref}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPinned([]string{"BAD::ref"}); err == nil {
		t.Fatal("a bad pinned reference was accepted")
	}
	s.SetPinned([]string{ref})
	img, err := s.Pull(context.Background(), ref, nil)
	if err != nil || !img.Pinned {
		t.Fatalf("pinned image: %+v %v", img.Pinned, err)
	}
	other, err := s.Pull(context.Background(), host+"/library/other:1", nil)
	if err != nil || other.Pinned {
		t.Fatalf("unpinned image: %v %v", other.Pinned, err)
	}
}

// FuzzHostsTOML: any hosts.toml is parsed or refused, never a panic, and a
// host it yields has a scheme and an API path.
func FuzzHostsTOML(f *testing.F) {
	f.Add([]byte("server = \"https://registry.example\"\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n  override_path = true\n  [host.\"http://127.0.0.1:5000\".header]\n    x-a = [\"1\"]\n"))
	f.Add([]byte("[host.\"https://m\"]\nclient = [[\"a\", \"b\"]]\nca = [\"/nonexistent\"]\n"))
	f.Add([]byte("server = 3\n[host]\nx = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "reg.example"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "reg.example", "hosts.toml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		hosts, err := hostsFor(dir, "reg.example")
		if err != nil {
			return
		}
		for _, h := range hosts {
			if h.scheme == "" || h.host == "" {
				t.Fatalf("host without scheme or name: %+v", h)
			}
		}
	})
}
