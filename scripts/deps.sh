#!/usr/bin/env bash
# Installs what skiff needs on a Debian machine, idempotently: Debian packages (only when one is
# missing, after `apt-get update`), npm dependencies (when package-lock.json changed), then builds.
#   scripts/deps.sh            runtime + test packages
#   scripts/deps.sh --runtime  runtime packages only (deploy/install.sh: a node needs no test servers)
#   scripts/deps.sh --bench    also the benchmark peer (containerd)
set -euo pipefail
cd "$(dirname "$0")/.."

# Runtime: crun/runc (OCI runtimes), nftables/iptables (pod networking), containernetworking-plugins
# (CNI mode), musl-tools and make (the static native helpers, native/), ca-certificates (registries).
packages=(crun runc nftables iptables containernetworking-plugins ca-certificates musl-tools make)
# Tests: docker-registry, busybox-static, zstd, apache2-utils (htpasswd) for the e2e registry and
# images; iproute2 (`ip` in tests that check links; skiff itself uses netlink); prometheus (and its
# promtool), the scraper of the /metrics e2e (~19 MB download, ~5 s to install).
test_packages=(iproute2 docker-registry busybox-static zstd apache2-utils prometheus)
case "${1:-}" in
  --runtime) ;;
  --bench) packages+=("${test_packages[@]}" containerd) ;;
  *) packages+=("${test_packages[@]}") ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "skiff: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker-registry package starts a registry on :5000 when systemd is there, and its
# prometheus package one on :9090; the tests start their own on random loopback ports and never
# use those.

stamp=node_modules/.skiff-lock-stamp
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "skiff: installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

if [[ -f native/Makefile ]]; then make -s -C native; fi
rm -rf dist
npm run --silent build
