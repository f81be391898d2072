package images

import (
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/images/content"
)

// storedImage is an image whose manifest, config and layers are blobs in
// the content store: what an import has read, or what an export writes.
type storedImage struct {
	cs       *content.Store
	manifest []byte
	config   []byte
	mt       types.MediaType
}

// manifestFields are the parts of an OCI or Docker schema 2 manifest that
// imports and exports need; the two formats share them.
type manifestFields struct {
	MediaType types.MediaType `json:"mediaType"`
	Config    v1.Descriptor   `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

// loadStoredImage reads manifest m and its config from the store.
func loadStoredImage(cs *content.Store, m digest.Digest) (storedImage, manifestFields, error) {
	raw, err := readBlob(cs, m, maxMetadataSize)
	if err != nil {
		return storedImage{}, manifestFields{}, fmt.Errorf("manifest %s: %w", m, err)
	}
	var mf manifestFields
	if err := json.Unmarshal(raw, &mf); err != nil {
		return storedImage{}, mf, fmt.Errorf("manifest %s: %w", m, err)
	}
	if mf.MediaType == "" {
		mf.MediaType = types.OCIManifestSchema1
	}
	if !mf.MediaType.IsImage() {
		return storedImage{}, mf, fmt.Errorf("manifest %s: media type %q is not an image manifest", m, mf.MediaType)
	}
	cfg, err := readBlob(cs, digest.Digest(mf.Config.Digest.String()), maxMetadataSize)
	if err != nil {
		return storedImage{}, mf, fmt.Errorf("manifest %s: config: %w", m, err)
	}
	return storedImage{cs: cs, manifest: raw, config: cfg, mt: mf.MediaType}, mf, nil
}

// maxMetadataSize bounds what is read into memory: manifests, configs, indexes.
const maxMetadataSize = 16 << 20

func readBlob(cs *content.Store, d digest.Digest, limit int64) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	rc, err := cs.Open(d)
	if err != nil {
		return nil, fmt.Errorf("blob %s is missing", d)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d, limit)
	}
	return b, nil
}

func (i storedImage) image() (v1.Image, error)            { return partial.CompressedToImage(i) }
func (i storedImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i storedImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i storedImage) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d := digest.Digest(h.String())
	size, err := i.cs.Size(d)
	if err != nil {
		return nil, fmt.Errorf("layer %s is missing", d)
	}
	return storedBlob{cs: i.cs, d: d, size: size}, nil
}

// storedBlob is a layer in the content store.
type storedBlob struct {
	cs   *content.Store
	d    digest.Digest
	size int64
}

func (b storedBlob) Digest() (v1.Hash, error)            { return v1.NewHash(b.d.String()) }
func (b storedBlob) Compressed() (io.ReadCloser, error)  { return b.cs.Open(b.d) }
func (b storedBlob) Size() (int64, error)                { return b.size, nil }
func (b storedBlob) MediaType() (types.MediaType, error) { return layerMediaType(b.cs, b.d) }

// layerMediaType names a stored layer's format from its first bytes.
func layerMediaType(cs *content.Store, d digest.Digest) (types.MediaType, error) {
	rc, err := cs.Open(d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	magic := make([]byte, 4)
	n, _ := io.ReadFull(rc, magic)
	switch compressionOf(magic[:n]) {
	case gzipped:
		return types.OCILayer, nil
	case zstandard:
		return types.OCILayerZStd, nil
	}
	return types.OCIUncompressedLayer, nil
}
