package specjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
)

// fill sets every field reachable from v to a value that is not zero, so
// that a field the generated code does not know (a runtime-spec upgrade
// without a regeneration) is lost on the way and the comparison fails.
func fill(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" {
				fill(t, v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(t, v.Index(i), path+"[]")
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, path+"{key}")
		fill(t, e, path+"{}")
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("v" + strings.ReplaceAll(path, ".", "/"))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path) % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(path)%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Interface:
		// Windows' credentialSpec: free-form JSON, decoded as a map.
		v.Set(reflect.ValueOf(map[string]any{"k": path}))
	default:
		t.Fatalf("%s: kind %s: teach fill about it", path, v.Kind())
	}
}

// TestSameAsEncodingJSON: what encoding/json writes the generated code reads
// back whole, and the other way round, for a spec with every field set and
// for the default spec.
func TestSameAsEncodingJSON(t *testing.T) {
	var full specs.Spec
	fill(t, reflect.ValueOf(&full).Elem(), "spec")
	var proc specs.Process
	fill(t, reflect.ValueOf(&proc).Elem(), "process")
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
