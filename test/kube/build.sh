#!/usr/bin/env bash
# Builds a one-node Kubernetes control plane for the kubelet e2e test
# (test/e2e/kubelet_test.go) from the Go module proxy — kubelet, kube-apiserver
# and kubectl of Kubernetes $KUBE_VERSION, and the etcd server it requires —
# into a cache directory, and prints that directory. Quick when it is already
# built (a first build takes ~8 minutes on two cores).
#   test/kube/build.sh [DIR]   (default /var/cache/berth-kube/$KUBE_VERSION)
# The test looks for them there (or in $BERTH_KUBE_DIR) and skips, saying so,
# when they are missing.
set -eu
version=${KUBE_VERSION:-v1.37.2}
dir=${1:-/var/cache/berth-kube/$version}
bins="etcd kube-apiserver kubelet kubectl"
have=1
for b in $bins; do [ -x "$dir/$b" ] || have=0; done
if [ $have = 1 ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# k8s.io/kubernetes replaces its staging modules with local paths, which a
# module outside its tree cannot use: require the published ones instead.
go mod download -json "k8s.io/kubernetes@$version" > dl.json
gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' dl.json)
staging=v0.${version#v1.}
{
  echo "module berth-kube"
  echo "go 1.26.0"
  echo "require k8s.io/kubernetes $version"
  grep '=> ./staging' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
mkdir etcd
cat > etcd/main.go <<'GO'
// Command etcd is etcd's server, at the version Kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
cat > deps.go <<'GO'
package main

import (
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
)
GO
GOFLAGS=-mod=mod go mod tidy >&2
rm deps.go
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$dir/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kubectl ./etcd >&2
echo "$dir"
