package dockerapi

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestBoolParams: every boolean query parameter is read as dockerd reads
// it, whatever spelling the SDKs send (docker-py sends True and False).
func TestBoolParams(t *testing.T) {
	for _, tc := range []struct {
		query     string
		def, want bool
	}{
		{"x=1", false, true}, {"x=true", false, true}, {"x=True", false, true}, {"x=yes", false, true}, {"x=on", false, true},
		{"x=0", true, false}, {"x=false", true, false}, {"x=False", true, false}, {"x=FALSE", true, false},
		{"x=no", true, false}, {"x=None", true, false}, {"x=", true, false},
		{"", true, true}, {"", false, false}, // absent: the default
	} {
		r := httptest.NewRequest("GET", "/containers/json?"+tc.query, nil)
		if got := boolParamOr(r, "x", tc.def); got != tc.want {
			t.Errorf("%q (default %v): %v, want %v", tc.query, tc.def, got, tc.want)
		}
	}
}

// TestFiltersAndTimes: filters in both of their JSON shapes, and since/until
// as Unix times, RFC 3339 times and durations.
func TestFiltersAndTimes(t *testing.T) {
	for _, q := range []string{`{"label":["a=b","c"]}`, `{"label":{"a=b":true,"c":true,"off":false}}`} {
		r := httptest.NewRequest("GET", "/containers/json", nil)
		v := r.URL.Query()
		v.Set("filters", q)
		r.URL.RawQuery = v.Encode()
		f, err := parseFilters(r)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(f["label"]))
		if !slices.Equal(got, []string{"a=b", "c"}) {
			t.Errorf("%s: %v", q, got)
		}
	}
	r := httptest.NewRequest("GET", "/containers/json?filters=%7Bbad", nil)
	if _, err := parseFilters(r); err == nil {
		t.Error("malformed filters accepted")
	}
	if got := unixParam("1700000000.5"); !got.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("fractional Unix time: %v", got)
	}
	if got := unixParam("2023-11-14T22:13:20Z"); !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("RFC 3339: %v", got)
	}
	if got := unixParam("0"); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("since=0 is the epoch, got %v", got)
	}
	if got := unixParam("10m"); time.Since(got) < 9*time.Minute || time.Since(got) > 11*time.Minute {
		t.Errorf("a duration: %v", got)
	}
}
