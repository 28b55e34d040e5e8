#!/usr/bin/env bash
# Builds plinth's Debian packages with cargo-deb: plinth-agent, plinth-coordinator and plinth
# (the CLI), into ${OUT:-target/debian}. Release builds by default; `--debug` packages the
# debug binaries already built (`cargo build --workspace --bins`), which is what the package
# test does on CI's two cores (a release build with fat LTO takes far longer).
# Installs the pinned cargo-deb first when it is missing (from crates.io, about 1.5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0

if [ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "Installing cargo-deb $CARGO_DEB_VERSION"
  # Its own target directory, not the workspace's.
  env -u CARGO_TARGET_DIR cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi

target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/debian}
mkdir -p "$out"
if [ "${1:-}" = "--debug" ]; then
  # cargo-deb warns that a dev profile is for testing only; that is what this is.
  flags=(--no-build --profile dev --fast)
else
  cargo build --release --locked -p plinth-agent -p plinth-coordinator --bins
  flags=(--no-build)
fi
cargo deb -p plinth-agent "${flags[@]}" -o "$out" 2>&1 | grep -v "dev profile\|debug symbols set\|^ *To enable" || true
cargo deb -p plinth-coordinator "${flags[@]}" -o "$out" 2>&1 | grep -v "dev profile\|debug symbols set\|^ *To enable" || true
cargo deb -p plinth-coordinator --variant cli "${flags[@]}" -o "$out" 2>&1 | grep -v "dev profile\|debug symbols set\|^ *To enable" || true
for p in plinth-agent plinth-coordinator plinth; do
  ls "$out/${p}_"*.deb >/dev/null
done
echo "packages in $out:"
ls -1 "$out"/*.deb
