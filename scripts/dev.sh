#!/usr/bin/env bash
# Starts a whole plinth region on this machine, in the foreground: a coordinator on
# 127.0.0.1:7443, hosts (agents enrolled through the real token + CSR + mTLS path, each on a
# private libvirtd with QEMU when run as root), simulated BMCs and a demo (see README).
# Data lives in .dev/ (delete it for a fresh region). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/debug/plinth-coordinator" dev --data-dir .dev "$@"
