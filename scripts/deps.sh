#!/usr/bin/env bash
# Installs what skiff needs on a Debian machine, idempotently: Debian packages (only when one is
# missing, after `apt-get update`), npm dependencies (when package-lock.json changed), then builds.
#   scripts/deps.sh            runtime + test packages
#   scripts/deps.sh --bench    also the benchmark peer (containerd)
set -euo pipefail
cd "$(dirname "$0")/.."

# crun/runc: OCI runtimes. musl-tools, make: the static native helpers (native/). docker-registry, busybox-static, zstd, apache2-utils (htpasswd):
# the e2e tests' registry and images. nftables/iptables: pod networking. containernetworking-plugins: CNI mode
# (and its e2e). iproute2: `ip` in tests that check links and addresses (skiff itself uses netlink).
# prometheus (and its promtool): the scraper of the /metrics e2e (~19 MB download, ~5 s to install).
packages=(crun runc nftables iptables containernetworking-plugins iproute2 docker-registry busybox-static zstd apache2-utils ca-certificates musl-tools make prometheus)
if [[ "${1:-}" == "--bench" ]]; then packages+=(containerd); fi

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
