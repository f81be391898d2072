package linux

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/fill"
)

// TestGeneratedJSON: state.json, the layout cache and the init's messages, written and read by
// generated code (generate.sh), say what encoding/json says with every
// field set — so a field added without a regeneration fails here instead
// of being dropped from every container's state.
func TestGeneratedJSON(t *testing.T) {
	// The plain types have the fields and tags but not the generated methods.
	type plainState State
	type plainCache layoutCache
	type plainMsg syncMsg
	var st plainState
	var lc plainCache
	var msg plainMsg
	for name, v := range map[string]any{"state": &st, "layout cache": &lc, "sync message": &msg} {
		if err := fill.Fill(reflect.ValueOf(v).Elem(), name); err != nil {
			t.Fatal(err)
		}
	}
	st.Created = time.Date(2026, 12, 7, 23, 0, 0, 5, time.UTC)
	check := func(t *testing.T, plain any, gen interface {
		json.Marshaler
		json.Unmarshaler
	}) {
		b, err := json.Marshal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if err := gen.UnmarshalJSON(b); err != nil {
			t.Fatalf("generated decode: %v", err)
		}
		if !reflect.DeepEqual(reflect.ValueOf(gen).Elem().Convert(reflect.TypeOf(plain).Elem()).Interface(), reflect.ValueOf(plain).Elem().Interface()) {
			t.Errorf("generated decode lost something of\n%s", b)
		}
		out, err := gen.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back := reflect.New(reflect.TypeOf(plain).Elem())
		if err := json.Unmarshal(out, back.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Interface(), plain) {
			t.Errorf("encoding/json reads back something else from the generated encode:\n%s", out)
		}
	}
	t.Run("state", func(t *testing.T) { check(t, &st, new(State)) })
	t.Run("layout cache", func(t *testing.T) { check(t, &lc, new(layoutCache)) })
	t.Run("sync message", func(t *testing.T) { check(t, &msg, new(syncMsg)) })
	if err := new(State).UnmarshalJSON([]byte(`{"pid":"x"}`)); err == nil {
		t.Error("a malformed state was accepted")
	}
}
