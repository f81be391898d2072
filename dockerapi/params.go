package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// How the Docker API's queries and bodies are read, in one place: every
// handler reads a boolean, a filter, a time or a body through these.

// decodeBody reads a JSON request body; malformed JSON is a 400. Unknown
// fields are ignored, as dockerd ignores them: clients send newer fields.
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("malformed JSON in the request body: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// boolParam reads a boolean query parameter as dockerd reads every one:
// absent, empty, 0, no, false or none (in any case) is false, anything
// else true. The SDKs send False, false and 0 for the same thing.
func boolParam(r *http.Request, name string) bool {
	return boolParamOr(r, name, false)
}

// boolParamOr is boolParam with the value an absent parameter has.
func boolParamOr(r *http.Request, name string, def bool) bool {
	q := r.URL.Query()
	if !q.Has(name) {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(q.Get(name))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// intParam is an integer parameter; nil when absent or not a number.
func intParam(r *http.Request, name string) *int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil {
		return nil
	}
	return &n
}

// parseFilters reads Docker's filters parameter: {"key":["v",...]}, or the
// {"key":{"v":true}} that the CLI sends.
func parseFilters(r *http.Request) (engine.Filters, error) {
	f := r.URL.Query().Get("filters")
	if f == "" {
		return nil, nil
	}
	var filters engine.Filters
	if err := json.Unmarshal([]byte(f), &filters); err == nil {
		return filters, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(f), &sets); err != nil {
		return nil, fmt.Errorf("invalid filters %q: %w", f, errdefs.ErrInvalidArgument)
	}
	filters = engine.Filters{}
	for k, vs := range sets {
		for v, on := range vs {
			if on {
				filters[k] = append(filters[k], v)
			}
		}
	}
	return filters, nil
}

// unixParam reads Docker's since/until: Unix seconds (with fractions), an
// RFC 3339 time, or a Go duration before now ("10m").
func unixParam(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	// Seconds first: "0" is the epoch (every event kept), not a duration.
	if sec, frac, _ := strings.Cut(v, "."); sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if frac != "" {
				ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			}
			return time.Unix(s, ns)
		}
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d)
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t
	}
	return time.Time{}
}

// sizeParams reads a resize's h and w.
func sizeParams(r *http.Request) (engine.Size, error) {
	q := r.URL.Query()
	h, errH := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, errW := strconv.ParseUint(q.Get("w"), 10, 16)
	if errH != nil || errW != nil {
		return engine.Size{}, fmt.Errorf("invalid terminal size h=%q w=%q: %w", q.Get("h"), q.Get("w"), errdefs.ErrInvalidArgument)
	}
	return engine.Size{Height: uint16(h), Width: uint16(wd)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
