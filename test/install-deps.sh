#!/usr/bin/env bash
# Installs, on Debian, what Berth's build and tests use: libseccomp-dev for
# berth-runtime; busybox-static for the test images, runc and crun to compare
# against, containerd for benchmarks, and the CNI plugins, skopeo, umoci and
# docker-registry for later suites, docker-compose (1.29) for the compose test
# and docker.io (dockerd 20.10) for the comparison with dockerd.
# Quick when everything is there; never fatal where apt is not available.
set -u
build=(libseccomp-dev pkg-config gcc libc6-dev)
pkgs=("${build[@]}" busybox-static runc crun containerd containernetworking-plugins iptables iproute2 skopeo umoci docker-registry file docker-compose docker.io)
# "install-deps.sh build": only what building needs (make build, make run);
# "install-deps.sh docker": dockerd, for make bench-docker's comparison.
[ "${1:-}" = build ] && pkgs=("${build[@]}")
[ "${1:-}" = docker ] && pkgs=(docker.io)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-deps: missing ${missing[*]} (not root or no apt): tests that need them will skip" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their services (dockerd would make docker0 and
# its iptables rules): the tests start their own instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  echo "install-deps: apt-get failed; tests that need ${missing[*]} will skip" >&2
  exit 0
}
# The packages start system services; the tests start their own instances.
for s in docker-registry containerd docker; do systemctl disable --now "$s" >/dev/null 2>&1 || true; done
exit 0
