package shim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxLogLine is the longest chunk one CRI log line carries; longer output
// lines are split into partial ("P") lines, as containerd and CRI-O do, which
// also bounds the shim's memory whatever the container writes.
const maxLogLine = 16 * 1024

// logWriter writes the CRI log format:
//
//	2016-10-06T00:17:09.669794202Z stdout F a full line
//	2016-10-06T00:17:09.669794203Z stderr P the first part of a long li
type logWriter struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func openLog(path string) (*logWriter, error) {
	if path == "" {
		return &logWriter{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &logWriter{f: f}, nil
}

func (w *logWriter) line(stream string, partial bool, content []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	tag := "F"
	if partial {
		tag = "P"
	}
	w.buf = time.Now().UTC().AppendFormat(w.buf[:0], time.RFC3339Nano)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, stream...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, tag...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, content...)
	w.buf = append(w.buf, '\n')
	// One write per line: O_APPEND keeps lines whole if the file is shared.
	_, _ = w.f.Write(w.buf)
}

// copyStream turns r's bytes into log lines until r ends.
func (w *logWriter) copyStream(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			w.line(stream, false, chunk[:len(chunk)-1])
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			w.line(stream, true, chunk)
			continue
		}
		// EOF or a read error: flush what is left as a final partial line.
		if len(chunk) > 0 {
			w.line(stream, true, chunk)
		}
		return
	}
}

// reopen swaps the file for a new one at path (kubelet has renamed the old
// one). Lines are written whole under the lock, so none is split, lost or
// written twice across the swap.
func (w *logWriter) reopen(path string) error {
	if path == "" {
		return errors.New("the container has no log file")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("reopen log %s: %w", path, err)
	}
	w.mu.Lock()
	old := w.f
	w.f = f
	w.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
