package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
)

// templateFuncs are docker's --format functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"join":     strings.Join,
	"split":    strings.Split,
	"upper":    strings.ToUpper,
	"lower":    strings.ToLower,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
	"truncate": func(s string, n int) string { return s[:min(n, len(s))] },
	"println":  func(a ...any) string { return fmt.Sprintln(a...) },
}

// printer writes rows as docker does: a table (header and aligned columns),
// or with --format a Go template per row ("table ..." keeps the header,
// "json" is one JSON object a line).
type printer struct {
	w       io.Writer
	tw      *tabwriter.Writer
	tmpl    *template.Template
	json    bool
	wroteHd bool
	header  map[string]string
}

// newPrinter makes a printer for format; def is the default table's
// template ("table {{.ID}}\t..."), header names each field's column.
func newPrinter(w io.Writer, format, def string, header map[string]string) (*printer, error) {
	if format == "" {
		format = def
	}
	p := &printer{w: w, header: header}
	if format == "json" || format == "{{json .}}" {
		p.json = true
		return p, nil
	}
	table := strings.HasPrefix(format, "table")
	text := strings.TrimPrefix(format, "table")
	text = strings.ReplaceAll(strings.TrimSpace(text), `\t`, "\t")
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(text + "\n")
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	p.tmpl = tmpl
	if table {
		p.tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		var hd strings.Builder
		if err := template.Must(template.New("header").Funcs(templateFuncs).Parse(text+"\n")).Execute(&hd, headerRow(header)); err == nil {
			_, _ = io.WriteString(p.tw, hd.String())
		}
	}
	return p, nil
}

// headerRow makes the template print each field's column name: a map
// lookup by field name stands in for the row.
type headerRow map[string]string

func (p *printer) row(v any) error {
	if p.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(p.w, string(b))
		return err
	}
	out := p.w
	if p.tw != nil {
		out = p.tw
	}
	return p.tmpl.Execute(out, v)
}

func (p *printer) flush() error {
	if p.tw != nil {
		return p.tw.Flush()
	}
	return nil
}

// ago is docker's "2 minutes ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}

// size is docker's "1.15MB".
func size(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}
