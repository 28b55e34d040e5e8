#!/usr/bin/env bash
# Starts a whole plinth region on this machine, in the foreground: a coordinator on
# 127.0.0.1:7443 and one agent enrolled through the real token + CSR + mTLS path.
# Data lives in .dev/ (delete it for a fresh region). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/debug/plinth-coordinator" dev --data-dir .dev "$@"
