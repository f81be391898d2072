package engine

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// FuzzCreateBody: whatever a client sends as a container create request,
// translating it either succeeds or fails as bad input (HTTP 400): never
// a panic, never another kind of error.
func FuzzCreateBody(f *testing.F) {
	for _, seed := range []string{
		`{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"Binds":["/tmp:/t:ro","vol:/v"],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}}}`,
		`{"Image":"x","User":"1000:1000","HostConfig":{"NanoCpus":1500000000,"Memory":67108864,"PidsLimit":10}}`,
		`{"User":"root:wheel"}`, `{"HostConfig":{"Binds":[":"]}}`, `{"HostConfig":{"PortBindings":{"x/tcp":[{}]}}}`,
		`{not json`, `[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	volume := func(name string, _ map[string]string) (string, error) {
		if !volumeName.MatchString(name) {
			return "", errdefs.ErrInvalidArgument
		}
		return "/volumes/" + name, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Config
		if json.Unmarshal(data, &b) != nil {
			return // dockerapi answers malformed JSON with a 400 before the engine sees it
		}
		if _, err := containerConfig(b, volume); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("containerConfig: %v is not a bad-input error", err)
		}
		if _, err := portMappings(b.HostConfig.PortBindings); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("portMappings: %v is not a bad-input error", err)
		}
	})
}
