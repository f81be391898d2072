package images

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// A registry's hosts come from <configDir>/<registry>/, as containerd and
// nerdctl read them, so operators reuse the files they have:
//
//	hosts.toml: server = "https://registry.example"
//	            [host."https://mirror.local"]
//	              capabilities = ["pull", "resolve"]
//	              ca = "/etc/certs/mirror.pem"       # or a list
//	              skip_verify = false
//	              client = "/etc/certs/client.pem"  # cert and key in one file,
//	                                                 # or ["cert", "key"], or a list of pairs
//	              override_path = false  # true: the URL's path is the API root, no /v2 added
//	              [host."https://mirror.local".header]
//	                x-custom = ["1"]
//	*.crt:      CAs trusted for the registry itself (Docker's layout).
//	*.cert, *.key: client certificate pairs for the registry itself (by base name).
//
// Mirrors are tried in file order, then the server.

type hostsFile struct {
	Server string              `toml:"server"`
	Host   map[string]hostFile `toml:"host"`
}

type hostFile struct {
	Capabilities []string            `toml:"capabilities"`
	CA           any                 `toml:"ca"`
	SkipVerify   bool                `toml:"skip_verify"`
	Header       map[string][]string `toml:"header"`
	OverridePath bool                `toml:"override_path"`
	Client       any                 `toml:"client"`
}

// registryHost is one place to pull a registry's content from.
type registryHost struct {
	host   string // host[:port]
	scheme string // https, or http
	tls    *tls.Config
	header http.Header
	// path is the URL path that stands for /v2 on this host.
	path string
	// upstream is the registry itself (or its configured server), not a mirror.
	upstream bool
}

func (h registryHost) insecure() bool { return h.scheme == "http" }

// hostsFor returns where to pull registry's images from, in order.
func hostsFor(configDir, registry string) ([]registryHost, error) {
	upstream := registryHost{host: registry, scheme: "https", path: "/v2", upstream: true}
	if isLocal(registry) {
		upstream.scheme = "http" // as Docker does for localhost and 127.0.0.1
	}
	if configDir == "" {
		return []registryHost{upstream}, nil
	}
	dir := filepath.Join(configDir, registry)
	if cas, _ := filepath.Glob(filepath.Join(dir, "*.crt")); len(cas) > 0 {
		pool, err := certPool(cas)
		if err != nil {
			return nil, err
		}
		upstream.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if certs, _ := filepath.Glob(filepath.Join(dir, "*.cert")); len(certs) > 0 {
		var pairs [][2]string
		for _, c := range certs {
			pairs = append(pairs, [2]string{c, strings.TrimSuffix(c, ".cert") + ".key"})
		}
		if upstream.tls == nil {
			upstream.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := loadClientCerts(upstream.tls, pairs); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "hosts.toml"))
	if errors.Is(err, os.ErrNotExist) {
		return []registryHost{upstream}, nil
	}
	if err != nil {
		return nil, err
	}
	var hf hostsFile
	md, err := toml.Decode(string(b), &hf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "hosts.toml"), err)
	}
	if hf.Server != "" {
		u, err := hostURL(hf.Server)
		if err != nil {
			return nil, fmt.Errorf("%s: server: %w", filepath.Join(dir, "hosts.toml"), err)
		}
		upstream.host, upstream.scheme, upstream.path = u.Host, u.Scheme, apiRoot(u.Path, false)
	}
	var out []registryHost
	// TOML tables have no order in Go maps: take the file's order.
	for _, key := range md.Keys() {
		if len(key) != 2 || key[0] != "host" {
			continue
		}
		name := key[1]
		h := hf.Host[name]
		if len(h.Capabilities) > 0 && !slices.Contains(h.Capabilities, "pull") {
			continue
		}
		u, err := hostURL(name)
		if err != nil {
			return nil, fmt.Errorf("%s: host: %w", filepath.Join(dir, "hosts.toml"), err)
		}
		rh := registryHost{host: u.Host, scheme: u.Scheme, header: http.Header(h.Header), path: apiRoot(u.Path, h.OverridePath)}
		var cas []string
		switch ca := h.CA.(type) {
		case string:
			cas = []string{ca}
		case []any:
			for _, c := range ca {
				if s, ok := c.(string); ok {
					cas = append(cas, s)
				}
			}
		}
		pairs, err := clientPairs(h.Client)
		if err != nil {
			return nil, fmt.Errorf("%s: host %q: %w", filepath.Join(dir, "hosts.toml"), name, err)
		}
		if len(cas) > 0 || h.SkipVerify || len(pairs) > 0 {
			rh.tls = &tls.Config{InsecureSkipVerify: h.SkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the operator asked
			if len(cas) > 0 {
				if rh.tls.RootCAs, err = certPool(cas); err != nil {
					return nil, err
				}
			}
			if err := loadClientCerts(rh.tls, pairs); err != nil {
				return nil, err
			}
		}
		out = append(out, rh)
	}
	return append(out, upstream), nil
}

// hostURL parses a registry URL of hosts.toml: http or https, with a host.
func hostURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	return u, nil
}

// apiRoot is the URL path that stands for the distribution API's /v2 on a
// host: the URL's own path with /v2 added, or as it is with override_path.
func apiRoot(p string, override bool) string {
	p = strings.TrimSuffix(p, "/")
	if override || strings.HasSuffix(p, "/v2") {
		return p
	}
	return p + "/v2"
}

// clientPairs reads hosts.toml's client: "both.pem", ["cert", "key"], or
// [["cert", "key"], ...]; an empty key means the key is in the cert file.
func clientPairs(v any) ([][2]string, error) {
	bad := fmt.Errorf("client: want a file, a [cert, key] pair or a list of pairs, got %v", v)
	switch c := v.(type) {
	case nil:
		return nil, nil
	case string:
		return [][2]string{{c, ""}}, nil
	case []any:
		if len(c) == 0 {
			return nil, nil
		}
		if _, isPair := c[0].(string); isPair {
			cert, _ := c[0].(string)
			key := ""
			if len(c) > 1 {
				key, _ = c[1].(string)
			}
			if len(c) > 2 {
				return nil, bad
			}
			return [][2]string{{cert, key}}, nil
		}
		var out [][2]string
		for _, e := range c {
			p, err := clientPairs(e)
			if err != nil || len(p) != 1 {
				return nil, bad
			}
			out = append(out, p[0])
		}
		return out, nil
	}
	return nil, bad
}

func loadClientCerts(c *tls.Config, pairs [][2]string) error {
	for _, p := range pairs {
		key := p[1]
		if key == "" {
			key = p[0]
		}
		cert, err := tls.LoadX509KeyPair(p[0], key)
		if err != nil {
			return fmt.Errorf("registry client certificate %s: %w", p[0], err)
		}
		c.Certificates = append(c.Certificates, cert)
	}
	return nil
}

func certPool(files []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("registry CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("registry CA %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}

func isLocal(host string) bool {
	h := host
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "[::1]" || h == "::1"
}

// transport is the HTTP transport for a host: its TLS settings and headers,
// and no plain http unless the host is local or configured http.
func (h registryHost) transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if h.tls != nil {
		t.TLSClientConfig = h.tls
	}
	var rt http.RoundTripper = t
	if len(h.header) > 0 {
		rt = headerTransport{rt, h.header}
	}
	if h.path != "/v2" {
		rt = pathTransport{rt, h.host, h.path}
	}
	return limitManifests{httpGuard{rt, h.insecure()}}
}

// pathTransport moves the distribution API from /v2 to the host's own root
// (a path prefix in hosts.toml, or override_path).
type pathTransport struct {
	next       http.RoundTripper
	host, root string
}

func (t pathTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == t.host && (r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/")) {
		r = r.Clone(r.Context())
		r.URL.Path = t.root + strings.TrimPrefix(r.URL.Path, "/v2")
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
		r.URL.RawPath = ""
	}
	return t.next.RoundTrip(r)
}

// httpGuard refuses plain http where it was not asked for: the registry
// library would otherwise fall back to it for private-range addresses.
type httpGuard struct {
	next      http.RoundTripper
	allowHTTP bool
}

func (g httpGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.allowHTTP && !isLocal(r.URL.Host) {
		return nil, fmt.Errorf("refusing plain http to %s: configure it as an http host in hosts.toml to allow it", r.URL.Host)
	}
	return g.next.RoundTrip(r)
}

type headerTransport struct {
	next   http.RoundTripper
	header http.Header
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.header {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
	return t.next.RoundTrip(r)
}

// CheckRegistryConfig parses every registry's hosts.toml under dir, so that a
// mistake is found before a pull trips on it. A missing dir is no mistake.
func CheckRegistryConfig(dir string) (registries int, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || dir == "" {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		registries++
		if _, err := hostsFor(dir, e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, e.Name()), err))
		}
	}
	return registries, errors.Join(errs...)
}
