package dockerapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/store"
)

// logOpts say what of a container's log to stream.
type logOpts struct {
	stdout, stderr, follow, timestamps bool
	since, until                       time.Time
	tail                               int // -1: all
}

// containerLogs is `docker logs`: read from the container's CRI log file
// ("<RFC3339Nano> stdout|stderr P|F <text>" lines), as Docker's stream:
// multiplexed frames (8-byte headers), the containers having no terminal.
// follow keeps reading until the container has exited.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	o := logOpts{stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr"), follow: boolParam(r, "follow"),
		timestamps: boolParam(r, "timestamps"), since: unixParam(q.Get("since")), until: unixParam(q.Get("until")), tail: -1}
	if n, err := strconv.Atoi(q.Get("tail")); err == nil && n >= 0 {
		o.tail = n
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	s.streamLog(r.Context(), w, flush, c, o)
}

// streamLog writes c's log to w as Docker's multiplexed stream.
func (s *Server) streamLog(ctx context.Context, w io.Writer, flush func(), c store.Container, o logOpts) {
	var mu sync.Mutex
	emit := func(stream string, at time.Time, text []byte) {
		if stream == "stdout" && !o.stdout || stream == "stderr" && !o.stderr ||
			!o.since.IsZero() && at.Before(o.since) || !o.until.IsZero() && at.After(o.until) {
			return
		}
		if o.timestamps {
			text = append([]byte(at.UTC().Format(time.RFC3339Nano)+" "), text...)
		}
		fw := frameWriter{&mu, w, 1}
		if stream == "stderr" {
			fw.stream = 2
		}
		_, _ = fw.Write(text)
	}
	var f *os.File
	for {
		var err error
		if f, err = os.Open(c.LogPath); err == nil {
			break
		}
		// Not started yet (an attach comes before the start): wait for it.
		rec, gerr := s.containers.Get(c.ID)
		if !o.follow || gerr != nil || rec.State == store.ContainerExited {
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
		if first && o.tail >= 0 && len(lines) > o.tail {
			lines = lines[len(lines)-o.tail:]
		}
		first = false
		for _, l := range lines {
			emit(l.stream, l.at, l.text)
		}
		flush()
		if err != nil && err != io.EOF || !o.follow {
			return
		}
		rec, gerr := s.containers.Get(c.ID)
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

// unixParam reads Docker's since/until: Unix seconds, with fractions.
func unixParam(v string) time.Time {
	if v == "" || v == "0" {
		return time.Time{}
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
		return time.Time{}
	}
	ns := int64(0)
	if frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(s, ns)
}
