package engine

import (
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParseChanges(t *testing.T) {
	f, err := parseChanges([]string{`CMD ["sleep", "9"]`, "ENTRYPOINT /bin/entry", `ENV A=1 B="two words"`, "ENV OLD form value",
		"LABEL team=a", "EXPOSE 80 53/udp", "WORKDIR /srv\nUSER nobody", "VOLUME /data", "STOPSIGNAL SIGINT"})
	if err != nil {
		t.Fatal(err)
	}
	c := v1.Config{Env: []string{"A=0", "PATH=/bin"}}
	if err := f(&c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Cmd, []string{"sleep", "9"}) || !slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c", "/bin/entry"}) ||
		!slices.Equal(c.Env, []string{"PATH=/bin", "A=1", "B=two words", "OLD=form value"}) || c.Labels["team"] != "a" ||
		len(c.ExposedPorts) != 2 || c.WorkingDir != "/srv" || c.User != "nobody" || len(c.Volumes) != 1 || c.StopSignal != "SIGINT" {
		t.Fatalf("changed config: %+v", c)
	}
	for _, bad := range []string{"RUN echo", "ENV =x", `LABEL a="open`, "WORKDIR"} {
		if _, err := parseChanges([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
