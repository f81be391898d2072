package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// RemoteBlob names one blob on a registry and what it takes to read it
// there: the host it was resolved on (the registry or a mirror), the
// registry configuration directory that says how to reach that host, and
// the credentials for it. The lazy layer server (images/lazy), a process of
// its own, reads eStargz layers through it by ranges.
type RemoteBlob struct {
	HostsDir   string        `json:"hostsDir,omitempty"`
	Registry   string        `json:"registry"`   // the image's domain (docker.io)
	Host       string        `json:"host"`       // where it was resolved (the registry or a mirror)
	Repository string        `json:"repository"` // its path on the registry (library/busybox)
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	Auth       *Auth         `json:"auth,omitempty"`
}

// BlobReader reads byte ranges of a RemoteBlob.
type BlobReader struct {
	client *http.Client
	url    string
	size   int64
}

// OpenRemoteBlob authenticates to b's host (a bearer token's exchange, as a
// pull does) and returns a reader of b's ranges.
func OpenRemoteBlob(ctx context.Context, b RemoteBlob) (*BlobReader, error) {
	if err := b.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %w", b.Digest, err)
	}
	hosts, err := hostsFor(b.HostsDir, b.Registry)
	if err != nil {
		return nil, fmt.Errorf("registry configuration of %s: %w", b.Registry, err)
	}
	var h *registryHost
	for i := range hosts {
		if hosts[i].host == b.Host {
			h = &hosts[i]
		}
	}
	if h == nil {
		return nil, fmt.Errorf("blob %s: host %s is no longer configured for %s", b.Digest, b.Host, b.Registry)
	}
	var opts []name.Option
	if h.insecure() {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(h.host+"/"+b.Repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("repository %s/%s: %w", h.host, b.Repository, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if a := b.Auth; a != nil {
		auth = authn.FromConfig(authn.AuthConfig{
			Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		})
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, h.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("authenticate to %s: %w", h.host, err)
	}
	return &BlobReader{
		client: &http.Client{Transport: rt},
		url:    fmt.Sprintf("%s://%s/v2/%s/blobs/%s", h.scheme, h.host, b.Repository, b.Digest),
		size:   b.Size,
	}, nil
}

// Size is the blob's size.
func (r *BlobReader) Size() int64 { return r.size }

// Range returns the blob's bytes from off on, n of them (n < 0: to the
// end). The whole blob (0, -1) is asked for with a plain GET, as a pull does.
func (r *BlobReader) Range(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || off > r.size {
		return nil, fmt.Errorf("range %d of a %d-byte blob", off, r.size)
	}
	end := r.size - 1
	if n >= 0 && off+n-1 < end {
		end = off + n - 1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	if off > 0 || n >= 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(end, 10))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", r.url, err)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusOK:
		// A registry that ignores ranges sends it all: skip to off.
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("get %s: %w", r.url, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, end-off+1), resp.Body}, nil
	}
	resp.Body.Close()
	return nil, fmt.Errorf("get %s: %s", r.url, resp.Status)
}

// ReadAt reads len(p) bytes at off in one request.
func (r *BlobReader) ReadAt(p []byte, off int64) (int, error) {
	return r.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt bounded by ctx.
func (r *BlobReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	body, err := r.Range(ctx, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p)
	if errors.Is(err, io.ErrUnexpectedEOF) && off+int64(n) == r.size {
		err = io.EOF
	}
	return n, err
}
