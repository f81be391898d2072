package images

import (
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
)

// progress adds up a pull's bytes across its layers and reports them.
type progress struct {
	mu     sync.Mutex
	fn     func(Progress)
	total  int64
	done   int64
	layers map[digest.Digest]int64
}

func newProgress(fn func(Progress)) *progress {
	return &progress{fn: fn, layers: map[digest.Digest]int64{}}
}

func (p *progress) add(layer digest.Digest, n, size int64, complete bool) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layers[layer] += n
	p.done += n
	p.fn(Progress{Layer: layer, Done: p.layers[layer], Total: size, AllDone: p.done, AllSize: p.total, Complete: complete})
}

// mounted reports a layer mounted lazily: complete, and its bytes no
// longer part of what the pull downloads.
func (p *progress) mounted(layer digest.Digest, size int64) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total -= size
	p.fn(Progress{Layer: layer, AllDone: p.done, AllSize: p.total, Complete: true})
}

// countingReader reports every read's size.
type countingReader struct {
	r      io.Reader
	report func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}
