package buildkit

import (
	"maps"
	"testing"
)

func TestWithFastGzip(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]string
		want  map[string]string
	}{
		{nil, map[string]string{"compression-level": "1"}},
		{map[string]string{"name": "a"}, map[string]string{"name": "a", "compression-level": "1"}},
		{map[string]string{"compression": "gzip"}, map[string]string{"compression": "gzip", "compression-level": "1"}},
		// What the build asked for stays.
		{map[string]string{"compression-level": "9"}, map[string]string{"compression-level": "9"}},
		{map[string]string{"compression": "zstd"}, map[string]string{"compression": "zstd"}},
		{map[string]string{"compression": "uncompressed"}, map[string]string{"compression": "uncompressed"}},
	} {
		in := maps.Clone(c.attrs)
		if got := withFastGzip(c.attrs); !maps.Equal(got, c.want) {
			t.Errorf("withFastGzip(%v) = %v, want %v", in, got, c.want)
		}
		if !maps.Equal(c.attrs, in) {
			t.Errorf("withFastGzip changed its argument %v to %v", in, c.attrs)
		}
	}
}
