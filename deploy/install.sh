#!/usr/bin/env bash
# Installs skiff on a fresh Debian machine (as root) and starts skiffd with its embedded
# defaults: socket /run/skiff/skiff.sock, root /var/lib/skiff, state /run/skiff.
# With systemd, installs and starts skiffd.service; without it, starts skiffd in the background
# with its log in /var/log/skiffd.log.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
if [[ $(id -u) -ne 0 ]]; then echo "run as root" >&2; exit 1; fi
bash scripts/deps.sh --runtime

# `skiff` and `skiffd` on PATH, pointing at this checkout.
for bin in skiff skiffd; do
  target="$repo/dist/$([[ $bin == skiff ]] && echo cri/cli/main.js || echo daemon/main.js)"
  printf '#!/bin/sh\nexec node %q "$@"\n' "$target" > "/usr/local/bin/$bin"
  chmod 0755 "/usr/local/bin/$bin"
done

log=/var/log/skiffd.log
if [[ -d /run/systemd/system ]]; then
  log="journalctl -u skiffd"
  sed "s|@SKIFFD@|/usr/local/bin/skiffd|" deploy/skiffd.service > /etc/systemd/system/skiffd.service
  systemctl daemon-reload
  systemctl enable --now skiffd.service
  systemctl restart skiffd.service
else
  if [[ -S /run/skiff/skiff.sock ]] && skiff version >/dev/null 2>&1; then
    echo "skiffd is already running" >&2
  else
    nohup /usr/local/bin/skiffd >>"$log" 2>&1 &
    for _ in $(seq 1 50); do skiff version >/dev/null 2>&1 && break; sleep 0.2; done
  fi
fi
skiff version
echo "skiffd is serving unix:///run/skiff/skiff.sock (log: $log)"
