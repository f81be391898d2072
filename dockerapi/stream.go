package dockerapi

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// The streams of the Docker API: hijacked connections (attach, exec),
// multiplexed frames, JSON message streams (pull, push, build).

// hijack takes the connection over for a stream, answering 101 to a client
// that asked to upgrade (the CLI does) and 200 to one that did not.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.ReadWriter, bool) {
	conn, buf, ok := takeOver(w)
	if !ok {
		return nil, nil, false
	}
	if err := writeUpgrade(buf, r, contentType); err != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, buf, true
}

// takeOver hijacks the connection, answering nothing yet.
func takeOver(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, fmt.Errorf("connection cannot be hijacked"))
		return nil, nil, false
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	return conn, buf, true
}

// writeUpgrade answers a hijacked request: the stream begins.
func writeUpgrade(buf *bufio.ReadWriter, r *http.Request, contentType string) error {
	status := "HTTP/1.1 200 OK\r\n"
	if r.Header.Get("Upgrade") == "tcp" {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	fmt.Fprintf(buf, "%sContent-Type: %s\r\n\r\n", status, contentType)
	return buf.Flush()
}

// respondRaw answers an error on a connection already taken over.
func respondRaw(buf *bufio.ReadWriter, code int, err error) {
	msg := strings.ReplaceAll(strings.TrimSuffix(err.Error(), ": "+errdefs.ErrFailedPrecondition.Error()), `"`, `'`)
	body := fmt.Sprintf("{\"message\":%q}\n", msg)
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", code, http.StatusText(code), len(body), body)
	_ = buf.Flush()
}

// frameWriter writes Docker's multiplexed frames: an 8-byte header (the
// stream, then the length) before each write.
type frameWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hdr [8]byte
	hdr[0] = f.stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return f.w.Write(p)
}

// frames writes each of a log's lines to w as a frame of its stream.
func frames(w io.Writer) func(stream byte, p []byte) {
	var mu sync.Mutex
	return func(stream byte, p []byte) { _, _ = frameWriter{&mu, w, stream}.Write(p) }
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// failWriter calls fail when a write fails (the client has gone).
type failWriter struct {
	w    io.Writer
	fail func()
}

func (f failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		f.fail()
	}
	return n, err
}

// jsonStream sends each write as Docker's {"stream": ...} message.
type jsonStream struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (j *jsonStream) Write(p []byte) (int, error) {
	j.send(map[string]string{"stream": string(p)})
	return len(p), nil
}

func (j *jsonStream) send(v any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = json.NewEncoder(j.w).Encode(v)
	if f, ok := j.w.(http.Flusher); ok {
		f.Flush()
	}
}

// sendError ends a JSON stream with Docker's error message.
func (j *jsonStream) sendError(err error) {
	msg := errorMessage(err)
	j.send(map[string]any{"errorDetail": map[string]string{"message": msg}, "error": msg})
}

// flusher flushes w (a no-op for a writer that cannot).
func flusher(w http.ResponseWriter) func() {
	return func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
}
