package dockerapi

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// FuzzCreateBody: whatever a client sends as a container create request,
// decoding and translating it either succeeds or fails as bad input
// (HTTP 400): never a panic, never another kind of error.
func FuzzCreateBody(f *testing.F) {
	for _, seed := range []string{
		`{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"Binds":["/tmp:/t:ro","vol:/v"],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}}}`,
		`{"Image":"x","User":"1000:1000","HostConfig":{"NanoCpus":1500000000,"Memory":67108864,"PidsLimit":10}}`,
		`{"User":"root:wheel"}`, `{"HostConfig":{"Binds":[":"]}}`, `{"HostConfig":{"PortBindings":{"x/tcp":[{}]}}}`,
		`{not json`, `[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	volume := func(name string) (string, error) {
		if !volumeName.MatchString(name) {
			return "", errdefs.ErrInvalidArgument
		}
		return "/volumes/" + name, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := httptest.NewRequest("POST", "/containers/create", bytes.NewReader(data))
		var b createBody
		if err := decodeBody(r, &b); err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("decode: %v is not a bad-input error", err)
			}
			return
		}
		if _, err := containerConfig(b, volume); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("containerConfig: %v is not a bad-input error", err)
		}
		if _, err := portMappings(b.HostConfig.PortBindings); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("portMappings: %v is not a bad-input error", err)
		}
	})
}
