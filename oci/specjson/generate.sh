#!/bin/sh
# Regenerates specjson_easyjson.go (go generate ./oci/specjson). easyjson's
# root package brings net/http (and crypto/x509 with it) into any binary that
# imports it, for helpers the runtime never calls; the generated code's two
# interface checks use this package's own copies of its interfaces instead.
set -e
go run github.com/mailru/easyjson/easyjson -all=false specjson.go
sed -i -e 's/easyjson\.Marshaler/easyjsonMarshaler/g' \
	-e 's/easyjson\.Unmarshaler/easyjsonUnmarshaler/g' \
	-e '/^\teasyjson "github.com\/mailru\/easyjson"$/d' \
	-e '/^\t"github.com\/mailru\/easyjson"$/d' specjson_easyjson.go
gofmt -l . | grep . && exit 1 || true
