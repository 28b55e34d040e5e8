#!/usr/bin/env bash
# Every check and test plinth has: formatting, lints, unit tests, the systemd units, and the
# end-to-end tests that start real coordinator and agent processes against libvirt.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
scripts/verify-systemd.sh
# Every test binary runs even after one fails, so a report lists every failure at once.
cargo test --workspace --locked --no-fail-fast
# The Debian packages: built from the debug build above, linted, installed for real, checked
# and purged (scripts/package.sh installs the pinned cargo-deb first when missing).
scripts/test-packages.sh
