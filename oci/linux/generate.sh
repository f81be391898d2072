#!/bin/sh
# Regenerates state_easyjson.go, cgroups_layoutcache_easyjson.go and sync_easyjson.go
# (go generate ./oci/linux): state.json and the cgroup layout cache, read and
# written by every berth-runtime command, and the init's messages, read by
# create and exec: encoding/json would build its field tables for them in
# each new process. As in oci/specjson, the
# generated code's interface checks use this package's copies of easyjson's
# interfaces (jsongen.go), keeping easyjson's root package (net/http) out.
set -e
for f in state.go cgroups_layoutcache.go sync.go; do
	go run github.com/mailru/easyjson/easyjson -all=false "$f"
done
sed -i -e 's/easyjson\.Marshaler/easyjsonMarshaler/g' \
	-e 's/easyjson\.Unmarshaler/easyjsonUnmarshaler/g' \
	-e '/^\teasyjson "github.com\/mailru\/easyjson"$/d' \
	-e '/^\t"github.com\/mailru\/easyjson"$/d' state_easyjson.go cgroups_layoutcache_easyjson.go sync_easyjson.go
gofmt -l . | grep . && exit 1 || true
