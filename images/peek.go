package images

import (
	"bufio"
	"bytes"
	"io"
)

// newPeekReader lets decompress look at the magic number without losing it.
func newPeekReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64*1024) }

// layerCompression is how a layer blob is compressed, known by its magic number.
type layerCompression int

const (
	uncompressed layerCompression = iota
	gzipped
	zstandard
)

func compressionOf(magic []byte) layerCompression {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzipped
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return zstandard
	}
	return uncompressed
}
