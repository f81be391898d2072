#!/usr/bin/env bash
# Builds containerd 2.4 (the newest release) from the Go module proxy, as the
# benchmarks' second anchor beside Debian's containerd 1.6, into a cache
# directory, and prints that directory. Quick when it is already built.
#   test/bench/containerd2.sh [DIR]   (default /var/cache/berth-bench/containerd-$VERSION)
# The benchmarks look for it there (or in $BERTH_CONTAINERD2_DIR) and skip the
# containerd 2.4 columns, saying so, when it is missing.
set -eu
version=${CONTAINERD2_VERSION:-v2.4.2}
dir=${1:-/var/cache/berth-bench/containerd-$version}
if [ -x "$dir/containerd" ] && [ -x "$dir/containerd-shim-runc-v2" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
export GOBIN=$dir GOFLAGS=-mod=mod CGO_ENABLED=1
# The tags leave out the snapshotters that need C libraries this machine lacks.
go install -tags 'no_btrfs no_devmapper no_zfs' \
  "github.com/containerd/containerd/v2/cmd/containerd@$version" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$version" >&2
echo "$dir"
