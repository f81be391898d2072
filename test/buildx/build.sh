#!/usr/bin/env bash
# Builds docker/buildx $BUILDX_VERSION from the Go module proxy for the
# BuildKit e2e tests (test/e2e/buildkit_test.go) into a cache directory and
# prints its path. Quick when it is already built (~1.5 minutes on two cores
# the first time). The tests run it as a binary of its own (DOCKER_HOST set),
# never as the docker CLI's plugin: installed so, it would turn the classic
# builder's tests (docker build with DOCKER_BUILDKIT=0 aside) into BuildKit
# builds. The tests look for it there (or at $BERTH_BUILDX) and skip, saying
# so, when it is missing.
#   test/buildx/build.sh [DIR]   (default /var/cache/berth-buildx/$BUILDX_VERSION)
set -eu
version=${BUILDX_VERSION:-v0.38.2}
dir=${1:-/var/cache/berth-buildx/$version}
if [ -x "$dir/buildx" ]; then
  echo "$dir/buildx"
  exit 0
fi
mkdir -p "$dir"
GOBIN="$dir" CGO_ENABLED=0 go install "github.com/docker/buildx/cmd/buildx@$version" >&2
echo "$dir/buildx"
