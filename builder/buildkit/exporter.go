package buildkit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	bimages "github.com/berth-runtime/berth/images"
)

// mobyExporter is the "moby" exporter buildx's docker driver asks for (and
// "image" without push): BuildKit's image exporter writes the image into
// BuildKit's content store, then the image becomes Berth's — its blobs
// linked into Berth's store, its layers unpacked, its names recorded.
type mobyExporter struct {
	inner    exporter.Exporter
	images   *bimages.Service
	blobPath func(digest.Digest) string
}

func (e mobyExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	var names []string
	for n := range strings.SplitSeq(attrs[string(exptypes.OptKeyName)], ",") {
		if n = strings.TrimSpace(n); n != "" && !strings.Contains(n, "@") {
			names = append(names, n)
		}
	}
	inst, err := e.inner.Resolve(ctx, id, withFastGzip(attrs))
	if err != nil {
		return nil, err
	}
	return &mobyExport{ExporterInstance: inst, e: e, names: names}, nil
}

// withFastGzip makes the layers gzip's fastest unless the build asked for a
// level or another compression: a built image's layers are Berth's layers at
// once, compressed only for a later push, and Berth's commits and classic
// builds write gzip's fastest too. The defaults' level took a fifth of an
// 8-step build's export.
func withFastGzip(attrs map[string]string) map[string]string {
	c := attrs[string(exptypes.OptKeyLayerCompression)]
	if _, set := attrs[string(exptypes.OptKeyCompressionLevel)]; set || (c != "" && c != "gzip") {
		return attrs
	}
	out := maps.Clone(attrs)
	if out == nil {
		out = map[string]string{}
	}
	out[string(exptypes.OptKeyCompressionLevel)] = "1"
	return out
}

type mobyExport struct {
	exporter.ExporterInstance
	e     mobyExporter
	names []string
}

func (x *mobyExport) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	resp, fin, ref, err := x.ExporterInstance.Export(ctx, src, info)
	if err != nil {
		return resp, fin, ref, err
	}
	raw, err := base64.StdEncoding.DecodeString(resp[exptypes.ExporterImageDescriptorKey])
	var desc ocispec.Descriptor
	if err == nil {
		err = json.Unmarshal(raw, &desc)
	}
	if err != nil {
		releaseRef(ref)
		return nil, nil, nil, fmt.Errorf("the image exporter's descriptor: %w", err)
	}
	if _, err := x.e.images.Adopt(ctx, desc, x.names, x.e.blobPath); err != nil {
		releaseRef(ref)
		return nil, nil, nil, err
	}
	return resp, fin, ref, nil
}

func releaseRef(ref exporter.DescriptorReference) {
	if ref != nil {
		_ = ref.Release()
	}
}
