package dockerapi

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// A terminal attach's input: the client's bytes until its detach keys.

var errDetached = errors.New("detached")

// detachReader passes input through until it sees the detach keys, which it
// swallows and answers with errDetached. Bytes that begin the sequence but do
// not finish it are passed on.
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	pending []byte
	err     error
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 && d.err == nil {
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if len(d.keys) > 0 && b == d.keys[d.matched] {
				if d.matched++; d.matched == len(d.keys) {
					return copy(p, d.pending), errDetached
				}
				continue
			}
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if len(d.keys) > 0 && b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.pending = append(d.pending, b)
		}
		if d.err = err; err != nil {
			d.pending, d.matched = append(d.pending, d.keys[:d.matched]...), 0
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	if len(d.pending) == 0 && d.err != nil {
		return n, d.err
	}
	return n, nil
}

// parseDetachKeys reads Docker's detach keys ("ctrl-p,ctrl-q", the default
// when none are given; "a", "ctrl-@", "ctrl-[" ...).
func parseDetachKeys(spec string) ([]byte, error) {
	if spec == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(spec, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c >= '@' && c <= '_':
				out = append(out, c-'@')
			default:
				return nil, fmt.Errorf("invalid detach keys %q: %w", spec, errdefs.ErrInvalidArgument)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys %q: %w", spec, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}
