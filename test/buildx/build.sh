#!/usr/bin/env bash
# Builds the Docker clients the BuildKit e2e tests (test/e2e/buildkit_test.go)
# drive berthd with, from the Go module proxy, into cache directories, and
# prints their paths: docker/buildx $BUILDX_VERSION and Compose
# $COMPOSE_VERSION (github.com/docker/compose/v5). Quick when they are built
# (~1.5 and ~3 minutes on two cores the first time). The tests run buildx as
# a binary of its own (DOCKER_HOST set), and as the docker CLI's plugin only
# in a config directory of their own: installed for the CLI, it would turn
# the classic builder's tests into BuildKit builds. The tests look for them
# there (or at $BERTH_BUILDX, $BERTH_COMPOSE) and skip, saying so, when they
# are missing.
#   test/buildx/build.sh
set -eu
buildx_version=${BUILDX_VERSION:-v0.38.2}
compose_version=${COMPOSE_VERSION:-v5.6.0}
buildx_dir=/var/cache/berth-buildx/$buildx_version
compose_dir=/var/cache/berth-compose/$compose_version
if [ ! -x "$buildx_dir/buildx" ] || "$buildx_dir/buildx" version | grep -q unknown; then
  mkdir -p "$buildx_dir"
  # The version stamped in: Compose refuses a buildx that says none.
  GOBIN="$buildx_dir" CGO_ENABLED=0 go install -ldflags "-X github.com/docker/buildx/version.Version=$buildx_version" \
    "github.com/docker/buildx/cmd/buildx@$buildx_version" >&2
fi
echo "$buildx_dir/buildx"
if [ ! -x "$compose_dir/docker-compose" ]; then
  # Compose's go.mod has exclude directives, which go install refuses:
  # build it from a module of its own that requires it.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && go mod init berth-compose >/dev/null 2>&1 &&
    go get "github.com/docker/compose/v5/cmd@$compose_version" >&2 &&
    CGO_ENABLED=0 go build -o docker-compose github.com/docker/compose/v5/cmd >&2)
  mkdir -p "$compose_dir"
  mv "$work/docker-compose" "$compose_dir/docker-compose"
fi
echo "$compose_dir/docker-compose"
