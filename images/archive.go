package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Archives: one tar that is both an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) and a `docker save` archive (manifest.json
// naming the same blobs), as Docker 25 and later write them. Export writes
// that; Import reads either kind, or both in one, as docker save, docker
// load, skopeo, ctr and nerdctl write them.

// dockerManifest is one entry of a docker save archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

const (
	annotationImageName = "io.containerd.image.name" // the full reference, as containerd and Docker write it
	annotationRefName   = ocispec.AnnotationRefName  // a tag, or a reference, depending on the writer
)

// Export writes the images that refs name to w as one archive. A reference
// by tag exports the image under that name; one by ID, under no name (as
// docker save does).
func (s *Service) Export(ctx context.Context, w io.Writer, refs ...string) error {
	if len(refs) == 0 {
		return fmt.Errorf("export: no image named: %w", errdefs.ErrInvalidArgument)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	tw := tar.NewWriter(w)
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	var dockerManifests []dockerManifest
	written := map[digest.Digest]bool{}
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		rc, err := s.content.Open(d)
		if err != nil {
			return fmt.Errorf("blob %s is missing", d)
		}
		defer rc.Close()
		size, err := s.content.Size(d)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(archiveHeader(blobPath(d), size)); err != nil {
			return err
		}
		_, err = io.Copy(tw, rc)
		return err
	}
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := s.Resolve(ref)
		if err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
		if err := s.wholeBlobs(ctx, img); err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
		m := digest.Digest(img.Manifest)
		if !s.content.Has(m) {
			return fmt.Errorf("export %s: image %s was stored without its manifest (pulled by an older berthd): pull it again", ref, img.ID)
		}
		_, mf, err := loadStoredImage(s.content, m)
		if err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
		blobs := []digest.Digest{m, digest.Digest(mf.Config.Digest.String())}
		dm := dockerManifest{Config: blobPath(blobs[1]), RepoTags: []string{}}
		for _, l := range mf.Layers {
			d := digest.Digest(l.Digest.String())
			blobs = append(blobs, d)
			dm.Layers = append(dm.Layers, blobPath(d))
		}
		for _, d := range blobs {
			if err := writeBlob(d); err != nil {
				return fmt.Errorf("export %s: %w", ref, err)
			}
		}
		size, _ := s.content.Size(m)
		desc := ocispec.Descriptor{MediaType: string(mf.MediaType), Digest: m, Size: size}
		if named, err := Normalize(ref); err == nil && slices.Contains(img.RepoTags, named.String()) {
			tagged := named.(reference.Tagged)
			desc.Annotations = map[string]string{annotationImageName: named.String(), annotationRefName: tagged.Tag()}
			dm.RepoTags = []string{reference.FamiliarString(named)}
		}
		index.Manifests = append(index.Manifests, desc)
		dockerManifests = append(dockerManifests, dm)
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{ocispec.ImageIndexFile, index},
		{"manifest.json", dockerManifests},
	} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(archiveHeader(f.name, int64(len(b)))); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func archiveHeader(name string, size int64) *tar.Header {
	return &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

// Import reads an archive from r (docker save or OCI image layout, either
// or both in one tar), stores and unpacks the images in it for this node's
// platform, and records them under the names the archive gives them.
func (s *Service) Import(ctx context.Context, r io.Reader) ([]store.Image, error) {
	start := time.Now()
	imgs, err := s.importArchive(ctx, r)
	// Files of the archive that no image uses (a docker save's per-layer
	// json, a failed import's blobs) are garbage.
	s.gcMu.Lock()
	gcErr := s.gc()
	s.gcMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if gcErr != nil {
		return nil, fmt.Errorf("import: %w", gcErr)
	}
	for _, img := range imgs {
		s.log.Info("imported image", slog.String("id", img.ID), slog.Any("tags", img.RepoTags), slog.Duration("took", time.Since(start)))
	}
	return imgs, nil
}

func (s *Service) importArchive(ctx context.Context, r io.Reader) ([]store.Image, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	meta := map[string][]byte{}         // the archive's small metadata files
	files := map[string]digest.Digest{} // every other file, now a blob
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: not a tar archive: %v", errdefs.ErrInvalidArgument, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch name {
		case ocispec.ImageIndexFile, ocispec.ImageLayoutFile, "manifest.json", "repositories":
			b, err := io.ReadAll(io.LimitReader(tr, maxMetadataSize+1))
			if err != nil {
				return nil, err
			}
			if len(b) > maxMetadataSize {
				return nil, fmt.Errorf("%s is larger than %d bytes", name, maxMetadataSize)
			}
			meta[name] = b
			continue
		}
		// A blob of a layout names its digest: one stored already is skipped,
		// and its content must match the name.
		want := digest.Digest("")
		if alg, hex, ok := strings.Cut(strings.TrimPrefix(name, ocispec.ImageBlobsDir+"/"), "/"); ok && strings.HasPrefix(name, ocispec.ImageBlobsDir+"/") {
			want = digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
			if want.Validate() != nil {
				want = ""
			} else if s.content.Has(want) {
				files[name] = want
				continue
			}
		}
		d, _, err := s.content.Ingest(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if want != "" && d != want {
			return nil, fmt.Errorf("%s: content has digest %s", name, d)
		}
		files[name] = d
	}
	switch {
	case meta[ocispec.ImageIndexFile] != nil:
		return s.importLayout(ctx, meta)
	case meta["manifest.json"] != nil:
		return s.importDockerArchive(ctx, meta["manifest.json"], files)
	case meta["repositories"] != nil:
		return nil, fmt.Errorf("%w: a docker save archive without manifest.json (Docker before 1.10) is not supported", errdefs.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("%w: neither an OCI image layout (index.json) nor a docker save archive (manifest.json)", errdefs.ErrInvalidArgument)
}

// importLayout records the images of an OCI layout's index.json.
func (s *Service) importLayout(ctx context.Context, meta map[string][]byte) ([]store.Image, error) {
	if b := meta[ocispec.ImageLayoutFile]; b != nil {
		var l ocispec.ImageLayout
		if err := json.Unmarshal(b, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("%w: oci-layout %q: want version %s", errdefs.ErrInvalidArgument, b, ocispec.ImageLayoutVersion)
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(meta[ocispec.ImageIndexFile], &index); err != nil {
		return nil, fmt.Errorf("%w: index.json: %v", errdefs.ErrInvalidArgument, err)
	}
	var out []store.Image
	for _, desc := range index.Manifests {
		m, err := s.platformManifest(desc, 0)
		if err != nil {
			return nil, err
		}
		var tags []string
		if n := nameOf(desc.Annotations); n != "" {
			tags = []string{n}
		}
		rec, err := s.importManifest(ctx, m, tags)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: index.json names no image", errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// nameOf finds an image's name in its index annotations: the full reference
// containerd and Docker write, or a ref.name that is a reference (skopeo's
// oci-archive:file:name) rather than a bare tag.
func nameOf(a map[string]string) string {
	for _, v := range []string{a[annotationImageName], a[annotationRefName]} {
		if v == "" || (v == a[annotationRefName] && !strings.ContainsAny(v, ":/")) {
			continue
		}
		if n, err := Normalize(v); err == nil {
			if _, tagged := n.(reference.Tagged); tagged {
				return n.String()
			}
		}
	}
	return ""
}

// platformManifest follows desc to the image manifest for this node: desc
// itself, or its index's entry for this platform.
func (s *Service) platformManifest(desc ocispec.Descriptor, depth int) (digest.Digest, error) {
	switch types.MediaType(desc.MediaType) {
	case types.OCIImageIndex, types.DockerManifestList:
		if depth > 4 {
			return "", fmt.Errorf("%w: indexes nested too deep", errdefs.ErrInvalidArgument)
		}
		raw, err := readBlob(s.content, desc.Digest, maxMetadataSize)
		if err != nil {
			return "", fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return "", fmt.Errorf("%w: index %s: %v", errdefs.ErrInvalidArgument, desc.Digest, err)
		}
		var seen []string
		for _, m := range idx.Manifests {
			if m.Platform == nil || (m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH) {
				return s.platformManifest(m, depth+1)
			}
			seen = append(seen, m.Platform.OS+"/"+m.Platform.Architecture)
		}
		return "", fmt.Errorf("%w: index %s has no image for linux/%s (it has %s)", errdefs.ErrNotFound, desc.Digest, runtime.GOARCH, strings.Join(seen, ", "))
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return desc.Digest, nil
	}
	return "", fmt.Errorf("%w: index entry %s has media type %q, not an image or index", errdefs.ErrInvalidArgument, desc.Digest, desc.MediaType)
}

func (s *Service) importManifest(ctx context.Context, m digest.Digest, tags []string) (store.Image, error) {
	si, _, err := loadStoredImage(s.content, m)
	if err != nil {
		return store.Image{}, err
	}
	img, err := si.image()
	if err != nil {
		return store.Image{}, err
	}
	rec, err := s.ingest(ctx, img, nil, tags, nil, newProgress(nil))
	if err != nil {
		return store.Image{}, fmt.Errorf("image %s: %w", m, err)
	}
	return rec, nil
}

// importDockerArchive records the images of a docker save manifest.json: it
// names config and layer files, which become an OCI manifest here.
func (s *Service) importDockerArchive(ctx context.Context, raw []byte, files map[string]digest.Digest) ([]store.Image, error) {
	var entries []dockerManifest
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", errdefs.ErrInvalidArgument, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: manifest.json names no image", errdefs.ErrInvalidArgument)
	}
	blob := func(name string) (v1.Descriptor, error) {
		d, ok := files[path.Clean(name)]
		if !ok {
			return v1.Descriptor{}, fmt.Errorf("%w: manifest.json names %s, which the archive does not hold", errdefs.ErrInvalidArgument, name)
		}
		size, err := s.content.Size(d)
		if err != nil {
			return v1.Descriptor{}, err
		}
		h, err := v1.NewHash(d.String())
		return v1.Descriptor{Digest: h, Size: size}, err
	}
	var out []store.Image
	for _, e := range entries {
		cfg, err := blob(e.Config)
		if err != nil {
			return nil, err
		}
		cfg.MediaType = types.OCIConfigJSON
		mf := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg}
		for _, l := range e.Layers {
			ld, err := blob(l)
			if err != nil {
				return nil, err
			}
			if ld.MediaType, err = layerMediaType(s.content, digest.Digest(ld.Digest.String())); err != nil {
				return nil, err
			}
			mf.Layers = append(mf.Layers, ld)
		}
		rawManifest, err := json.Marshal(mf)
		if err != nil {
			return nil, err
		}
		m, _, err := s.content.Ingest(bytes.NewReader(rawManifest))
		if err != nil {
			return nil, err
		}
		var tags []string
		for _, t := range e.RepoTags {
			n, err := Normalize(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: %w", err)
			}
			tags = append(tags, n.String())
		}
		rec, err := s.importManifest(ctx, m, tags)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}
