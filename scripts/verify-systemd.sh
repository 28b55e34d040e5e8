#!/usr/bin/env bash
# Verifies systemd/*.service with systemd-analyze. ExecStart points at /usr/bin, so each unit
# is checked through a copy pointing at the binaries just built. Any complaint fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:-${CARGO_TARGET_DIR:-target}/debug}
bin_dir=$(cd "$bin_dir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in systemd/*.service; do
  sed "s#/usr/bin/#$bin_dir/#g" "$unit" > "$tmp/$(basename "$unit")"
done
out=$(systemd-analyze verify "$tmp"/*.service 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:"; echo "$out"; exit 1
fi
echo "systemd units verified: $(ls systemd/*.service | xargs -n1 basename | tr '\n' ' ')"
