package shim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// After an OpExecStream or OpAttach request, the connection carries frames
// both ways: a type byte, a 4-byte big-endian length, the payload.
const (
	// berthd → shim
	frameStdin      = 's'
	frameStdinClose = 'c'
	frameResize     = 'r' // payload: uint16 height, uint16 width
	// shim → berthd
	frameVersion = 'v' // first frame; payload: uint32 ProtocolVersion of the shim
	frameStdout  = 'o'
	frameStderr  = 'e'
	frameExit    = 'x' // payload: int32 exit code
	frameError   = '!' // payload: the error's text
)

// maxFrame bounds a frame's payload.
const maxFrame = 1 << 20

type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) write(typ byte, p []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.w.Write(p)
	return err
}

// streamWriter turns writes into frames of one type.
type streamWriter struct {
	fw  *frameWriter
	typ byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += maxFrame {
		end := min(off+maxFrame, len(p))
		if err := s.fw.write(s.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is over the limit", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}

// Size is a terminal's size.
type Size struct{ Height, Width uint16 }

func resizePayload(s Size) []byte {
	var p [4]byte
	binary.BigEndian.PutUint16(p[:2], s.Height)
	binary.BigEndian.PutUint16(p[2:], s.Width)
	return p[:]
}

func parseResize(p []byte) (Size, error) {
	if len(p) != 4 {
		return Size{}, errors.New("bad resize frame")
	}
	return Size{binary.BigEndian.Uint16(p[:2]), binary.BigEndian.Uint16(p[2:])}, nil
}
