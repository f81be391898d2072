package buildkit

import (
	"context"
	"fmt"
	"io"
	"sync"

	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// builds are the running /build?version=2 builds by their client's ID, and
// the uploads of their contexts.
type builds struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	uploads map[string]chan upload
}

// upload is a context's body and how its reader says it is done with it.
type upload struct {
	body io.Reader
	done func(error)
}

// add records a build's cancel; the function returned forgets it.
func (b *builds) add(id string, cancel context.CancelFunc) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancels == nil {
		b.cancels = map[string]context.CancelFunc{}
	}
	b.cancels[id] = cancel
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.cancels, id)
	}
}

func (b *builds) cancel(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.cancels[id]; c != nil {
		c()
	}
}

// rendezvous is the channel a build and its upload meet on.
func (b *builds) rendezvous(id string) chan upload {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.uploads == nil {
		b.uploads = map[string]chan upload{}
	}
	ch, ok := b.uploads[id]
	if !ok {
		ch = make(chan upload)
		b.uploads[id] = ch
	}
	return ch
}

func (b *builds) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.uploads, id)
}

// awaitUpload waits for the context of build id; done tells the uploader
// the build has read it.
func (b *builds) awaitUpload(ctx context.Context, id string) (io.Reader, func(error), error) {
	if id == "" {
		return nil, nil, fmt.Errorf("remote=%s needs a buildid: %w", RemoteUpload, errdefs.ErrInvalidArgument)
	}
	ch := b.rendezvous(id)
	defer b.forget(id)
	ctx, cancel := context.WithTimeout(ctx, uploadWait)
	defer cancel()
	select {
	case u := <-ch:
		return u.body, u.done, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("build %s: its context's upload did not come within %s: %w", id, uploadWait, errdefs.ErrInvalidArgument)
	}
}

func (b *builds) upload(ctx context.Context, id string, body io.Reader) error {
	ch := b.rendezvous(id)
	result := make(chan error, 1)
	wait, cancel := context.WithTimeout(ctx, uploadWait)
	defer cancel()
	select {
	case ch <- upload{body: body, done: func(err error) { result <- err }}:
	case <-wait.Done():
		b.forget(id)
		return fmt.Errorf("upload for build %s: no build waited for it within %s: %w", id, uploadWait, errdefs.ErrNotFound)
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// statusStream is BuildKit's Status stream turned into Trace calls.
type statusStream struct {
	ctx   context.Context
	trace func([]byte) error
}

func (s *statusStream) Send(m *controlapi.StatusResponse) error { return s.SendMsg(m) }

func (s *statusStream) SendMsg(m any) error {
	sr, ok := m.(*controlapi.StatusResponse)
	if !ok || s.trace == nil {
		return nil
	}
	b, err := proto.Marshal(sr)
	if err != nil {
		return err
	}
	return s.trace(b)
}

func (s *statusStream) Context() context.Context     { return s.ctx }
func (s *statusStream) SetHeader(metadata.MD) error  { return nil }
func (s *statusStream) SendHeader(metadata.MD) error { return nil }
func (s *statusStream) SetTrailer(metadata.MD)       {}
func (s *statusStream) RecvMsg(any) error            { return io.EOF }
