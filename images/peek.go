package images

import (
	"bufio"
	"io"
)

// newPeekReader lets decompress look at the magic number without losing it.
func newPeekReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64*1024) }
