package images

import (
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
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-runtime/berth/internal/testutil"
	"github.com/berth-runtime/berth/test/fixtures"
)

// Mirrors are tried in order; the first that answers serves the pull, and the
// image keeps its own name. The upstream here is a closed port on loopback,
// so no attempt could leave the machine.
func TestMirrors(t *testing.T) {
	testutil.RequireRoot(t)
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
	testutil.RequireRoot(t)
	reg := testutil.RequireBinary(t, "docker-registry")
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

// testCerts makes a CA and a server certificate for 127.0.0.1.
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
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
