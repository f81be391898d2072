package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-runtime/berth/test/fixtures"
)

// Mirrors are tried in order; the first that answers serves the pull, and the
// image keeps its own name. The upstream here is a closed port on loopback,
// so no attempt could leave the machine.
func TestMirrors(t *testing.T) {
	fixtures.RequireRoot(t)
	mirror := fixtures.Registry(t)
	fixtures.PushBusybox(t, mirror)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "registry.test"), 0o755)
	os.WriteFile(filepath.Join(dir, "registry.test", "hosts.toml"), []byte(fmt.Sprintf(`server = "https://127.0.0.1:1"

[host."http://127.0.0.1:2"]
  capabilities = ["pull", "resolve"]

[host."http://%s"]
  capabilities = ["pull", "resolve"]
  [host."http://%s".header]
    x-berth-test = ["1"]
`, mirror, mirror)), 0o644)
	s := newService(t)
	s.SetRegistryConfigDir(dir)
	img, err := s.Pull(context.Background(), "registry.test/library/busybox:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.RepoTags[0] != "registry.test/library/busybox:latest" {
		t.Fatalf("tags %v", img.RepoTags)
	}
	// A registry with no mirror that answers fails, naming every host tried.
	_, err = s.Pull(context.Background(), "registry.test/library/missing:1", nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error does not name the hosts tried: %v", err)
	}
}

// Debian's docker-registry with TLS from a test CA and htpasswd auth: the
// CA comes from the registry's config directory, the credentials from the
// CRI's AuthConfig.
func TestRegistryTLSAndAuth(t *testing.T) {
	fixtures.RequireRoot(t)
	reg := fixtures.RequireBinary(t, "docker-registry")
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := testCerts(t)
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("berth:"+string(hash)+"\n"), 0o644)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: %s
  tls:
    certificate: %s/cert.pem
    key: %s/key.pem
auth:
  htpasswd:
    realm: berth-test
    path: %s/htpasswd
`, dir, addr, dir, dir, dir)), 0o644)
	cmd := exec.Command(reg, "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ref, _ := name.ParseReference(addr + "/library/busybox:latest")
	creds := remote.WithAuth(&authn.Basic{Username: "berth", Password: "s3cret"})
	var err error
	for i := 0; i < 100; i++ { // the registry starts
		if err = remote.Write(ref, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}), creds, remote.WithTransport(tr)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("push to docker-registry: %v", err)
	}

	s := newService(t)
	certs := t.TempDir()
	s.SetRegistryConfigDir(certs)
	ctx := context.Background()
	good := &Auth{Username: "berth", Password: "s3cret"}
	if _, err := s.Pull(ctx, ref.String(), good); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("pull without the CA: %v", err)
	}
	os.MkdirAll(filepath.Join(certs, addr), 0o755)
	os.WriteFile(filepath.Join(certs, addr, "ca.crt"), caPEM, 0o644)
	if _, err := s.Pull(ctx, ref.String(), &Auth{Username: "berth", Password: "wrong"}); err == nil || !strings.Contains(strings.ToUpper(err.Error()), "UNAUTHORIZED") {
		t.Fatalf("pull with a wrong password: %v", err)
	}
	if _, err := s.Pull(ctx, ref.String(), nil); err == nil {
		t.Fatal("anonymous pull from an htpasswd registry succeeded")
	}
	if _, err := s.Pull(ctx, ref.String(), good); err != nil {
		t.Fatalf("pull with the CA and credentials: %v", err)
	}
}

// testCerts makes a CA and a certificate for 127.0.0.1, good for a server
// and for a client.
func testCerts(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func TestNoPlainHTTPUnlessAllowed(t *testing.T) {
	var called bool
	next := roundTripFunc(func(*http.Request) (*http.Response, error) { called = true; return nil, fmt.Errorf("sent") })
	req, _ := http.NewRequest("GET", "http://10.1.2.3:5000/v2/", nil)
	if _, err := (httpGuard{next, false}).RoundTrip(req); err == nil || called || !strings.Contains(err.Error(), "refusing plain http") {
		t.Fatalf("plain http to a private address: %v (sent: %v)", err, called)
	}
	local, _ := http.NewRequest("GET", "http://127.0.0.1:5000/v2/", nil)
	if _, _ = (httpGuard{next, false}).RoundTrip(local); !called {
		t.Fatal("plain http to loopback was refused")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A multi-arch index: this node's platform is chosen; an index without it
// is a clear error.
func TestMultiArchIndex(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	mk := func(arch string) v1.Image {
		img := fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"echo", arch}})
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Architecture = arch
		img, _ = mutate.ConfigFile(img, cf)
		return img
	}
	index := func(arches ...string) v1.ImageIndex {
		var idx v1.ImageIndex = empty.Index
		for _, a := range arches {
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: mk(a), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
		}
		return idx
	}
	for tag, idx := range map[string]v1.ImageIndex{"multi": index("arm64", goruntime.GOARCH, "s390x"), "foreign": index("arm64", "s390x")} {
		ref, _ := name.ParseReference(host+"/library/arch:"+tag, name.Insecure)
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
	}
	s := newService(t)
	img, err := s.Pull(context.Background(), host+"/library/arch:multi", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := Config(img); cfg.Architecture != goruntime.GOARCH {
		t.Fatalf("chose %s, want %s", cfg.Architecture, goruntime.GOARCH)
	}
	// The repo digest is the index's, which is what the user pulled by.
	if d, _ := index("arm64", goruntime.GOARCH, "s390x").Digest(); !strings.HasSuffix(img.RepoDigests[0], d.String()) {
		t.Fatalf("repo digest %s, want the index's %s", img.RepoDigests[0], d)
	}
	if _, err := s.Pull(context.Background(), host+"/library/arch:foreign", nil); err == nil || !strings.Contains(err.Error(), "platform") {
		t.Fatalf("index without this platform: %v", err)
	}
}

func TestZstdLayer(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("zstd!"))
	tw.Close()
	layer := fixtures.Layer(t, buf.Bytes(), tarball.WithCompression(compression.ZStd))
	img, _ := mutate.AppendLayers(fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}), layer)
	ref := fixtures.Push(t, img, host, "library/zstd:1")
	s := newService(t)
	got, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	top := s.snapshots.LayerPath(ChainIDsOf(got)[1])
	if b, err := os.ReadFile(filepath.Join(top, "hello.txt")); err != nil || string(b) != "zstd!" {
		t.Fatalf("zstd layer unpacked as %q: %v", b, err)
	}
}

// A registry that wants a bearer token: the challenge sends the client to a
// token endpoint, which takes the CRI credentials.
func TestBearerTokenAuth(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	fixtures.PushBusybox(t, backend)
	var tokens int
	var front string // known once the front listens; requests come after
	front = fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != "berth" || p != "tok3n" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			tokens++
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"token":"good-token","expires_in":300}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer good-token" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test",scope="repository:library/busybox:pull"`, front))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})

	s := newService(t)
	ref := front + "/library/busybox:latest"
	if _, err := s.Pull(context.Background(), ref, &Auth{Username: "berth", Password: "nope"}); err == nil {
		t.Fatal("pull with wrong credentials succeeded")
	}
	if _, err := s.Pull(context.Background(), ref, &Auth{Username: "berth", Password: "tok3n"}); err != nil {
		t.Fatalf("pull with a bearer token: %v", err)
	}
	if tokens == 0 {
		t.Fatal("no token was requested")
	}
}
