#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, then the unit and integration tests against a
# real Redis and a real PostgreSQL (installed with apt-get where missing, started here on free
# ports, stopped at exit) and SQLite, with WeChat played by the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

cargo fmt --check
cargo clippy --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi

# The mini program demo's own code, against a real `wxlogin demo`.
command -v node >/dev/null || { apt-get install -y -q nodejs >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q nodejs >/dev/null; }; }
cargo build --bin wxlogin
WXLOGIN_BIN="${CARGO_TARGET_DIR:-target}/debug/wxlogin" node --test miniprogram-demo/test/*.test.js
