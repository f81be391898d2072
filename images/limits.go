package images

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// What a registry can make berthd read or store for one image, whatever it
// serves: manifests and indexes are read whole into memory, configs too, and
// each layer is one overlayfs lower directory (the kernel stacks at most 128,
// and a mount's options must fit a page).
const (
	MaxManifestBytes = 4 << 20
	MaxConfigBytes   = 8 << 20
	MaxLayers        = 128
)

// limitManifests refuses manifest and index responses larger than
// MaxManifestBytes, before they are read whole.
type limitManifests struct{ next http.RoundTripper }

func (l limitManifests) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.Path, "/manifests/") || r.Method != http.MethodGet {
		return resp, err
	}
	if resp.ContentLength > MaxManifestBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("manifest %s is %d bytes, over the %d-byte limit: %w", r.URL.Path, resp.ContentLength, MaxManifestBytes, errdefs.ErrInvalidArgument)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxManifestBytes, what: r.URL.Path}
	return resp, nil
}

// limitedBody fails a read past its limit instead of truncating silently.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	what string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("manifest %s is over the %d-byte limit: %w", b.what, MaxManifestBytes, errdefs.ErrInvalidArgument)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// checkLimits refuses an image whose manifest names a config or a number of
// layers past the limits, before anything of it is fetched.
func checkLimits(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if m.Config.Size > MaxConfigBytes {
		return fmt.Errorf("image config is %d bytes, over the %d-byte limit: %w", m.Config.Size, MaxConfigBytes, errdefs.ErrInvalidArgument)
	}
	if len(m.Layers) > MaxLayers {
		return fmt.Errorf("image has %d layers, over the limit of %d: %w", len(m.Layers), MaxLayers, errdefs.ErrInvalidArgument)
	}
	return nil
}
