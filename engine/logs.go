package engine

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"github.com/berth-runtime/berth/internal/store"
)

// A Docker container's log is its CRI log file ("<RFC3339Nano>
// stdout|stderr P|F <text>" lines), read as it is written.

// LogOptions say what of a container's log to read.
type LogOptions struct {
	Stdout, Stderr, Follow, Timestamps bool
	Since, Until                       time.Time
	Tail                               int // -1: all
}

// Logs reads c's log: write gets each line (stream 1 stdout, 2 stderr),
// flush is called after each batch. Follow keeps reading until c has
// exited or ctx ends; before c has started it waits for its log.
func (e *Engine) Logs(ctx context.Context, c store.Container, o LogOptions, write func(stream byte, p []byte), flush func()) {
	emit := func(stream string, at time.Time, text []byte) {
		if stream == "stdout" && !o.Stdout || stream == "stderr" && !o.Stderr ||
			!o.Since.IsZero() && at.Before(o.Since) || !o.Until.IsZero() && at.After(o.Until) {
			return
		}
		if o.Timestamps {
			text = append([]byte(at.UTC().Format(time.RFC3339Nano)+" "), text...)
		}
		if stream == "stderr" {
			write(2, text)
		} else {
			write(1, text)
		}
	}
	var f *os.File
	for {
		var err error
		if f, err = os.Open(c.LogPath); err == nil {
			break
		}
		// Not started yet (an attach comes before the start): wait for it.
		rec, gerr := e.containers.Get(c.ID)
		if !o.Follow || gerr != nil || rec.State == store.ContainerExited {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer f.Close()
	lr := &logReader{rd: bufio.NewReader(f)}
	first := true
	for {
		lines, err := lr.lines()
		if first && o.Tail >= 0 && len(lines) > o.Tail {
			lines = lines[len(lines)-o.Tail:]
		}
		first = false
		for _, l := range lines {
			emit(l.stream, l.at, l.text)
		}
		flush()
		if err != nil && err != io.EOF || !o.Follow {
			return
		}
		rec, gerr := e.containers.Get(c.ID)
		if gerr != nil || rec.State == store.ContainerExited {
			// One last read: what it wrote before it exited.
			lines, _ := lr.lines()
			for _, l := range lines {
				emit(l.stream, l.at, l.text)
			}
			flush()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type logLine struct {
	at     time.Time
	stream string
	text   []byte
}

// logReader reads CRI log lines as they are written: a line without its
// newline yet is kept until the rest arrives; partial CRI lines (P) are
// joined with what follows them, as the container wrote them.
type logReader struct {
	rd      *bufio.Reader
	carry   []byte
	partial []byte
}

func (l *logReader) lines() ([]logLine, error) {
	var out []logLine
	for {
		b, err := l.rd.ReadBytes('\n')
		if err != nil {
			l.carry = append(l.carry, b...)
			return out, err
		}
		if len(l.carry) > 0 {
			b, l.carry = append(l.carry, b...), nil
		}
		f := bytes.SplitN(bytes.TrimSuffix(b, []byte("\n")), []byte(" "), 4)
		if len(f) < 4 {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, string(f[0]))
		l.partial = append(l.partial, f[3]...)
		if string(f[2]) == "P" {
			continue
		}
		out = append(out, logLine{at: at, stream: string(f[1]), text: append(l.partial, '\n')})
		l.partial = nil
	}
}
