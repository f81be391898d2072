package specjson

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/fill"
	"github.com/berth-runtime/berth/oci/defaults"
)

func fillT(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if err := fill.Fill(v, path); err != nil {
		t.Fatal(err)
	}
}

// TestSameAsEncodingJSON: what encoding/json writes the generated code reads
// back whole, and the other way round, for a spec with every field set and
// for the default spec.
func TestSameAsEncodingJSON(t *testing.T) {
	var full specs.Spec
	fillT(t, reflect.ValueOf(&full).Elem(), "spec")
	var proc specs.Process
	fillT(t, reflect.ValueOf(&proc).Elem(), "process")
	for name, c := range map[string]struct {
		in  any
		out func() (any, json.Unmarshaler, json.Marshaler)
	}{
		"full spec":    {&full, func() (any, json.Unmarshaler, json.Marshaler) { var s Spec; return &s, &s, &s }},
		"default spec": {defaults.DefaultSpec(), func() (any, json.Unmarshaler, json.Marshaler) { var s Spec; return &s, &s, &s }},
		"full process": {&proc, func() (any, json.Unmarshaler, json.Marshaler) { var p Process; return &p, &p, &p }},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(c.in)
			if err != nil {
				t.Fatal(err)
			}
			got, u, m := c.out()
			if err := u.UnmarshalJSON(b); err != nil {
				t.Fatalf("generated decode: %v", err)
			}
			asSpecs := reflect.ValueOf(got).Convert(reflect.TypeOf(c.in)).Interface()
			if !reflect.DeepEqual(asSpecs, c.in) {
				t.Errorf("generated decode differs from what encoding/json wrote:\n got  %+v\n want %+v", asSpecs, c.in)
			}
			out, err := m.MarshalJSON()
			if err != nil {
				t.Fatalf("generated encode: %v", err)
			}
			back := reflect.New(reflect.TypeOf(c.in).Elem())
			if err := json.Unmarshal(out, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Interface(), c.in) {
				t.Errorf("encoding/json reads back something else from the generated encode:\n%s", out)
			}
		})
	}
}

// TestBadInput: a malformed config.json is refused with where it broke.
func TestBadInput(t *testing.T) {
	for _, in := range []string{`{"process":`, `{"process":{"args":"true"}}`, `[1]`, `{"ociVersion":1}`} {
		var s Spec
		err := s.UnmarshalJSON([]byte(in))
		if err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}
