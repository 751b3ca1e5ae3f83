#!/usr/bin/env bash
# Runs every check and test: formatting, the layering of src/ (scripts/layering.sh), clippy, the
# unit and integration tests against a real Redis and a real PostgreSQL (installed with apt-get
# where missing, started here on free ports, stopped at exit) and SQLite, with WeChat played by
# the emulator; then the mini program demo's tests and the web sign-in in headless Chromium
# (Debian's), schemathesis, and third parties (PyJWT, npm jose, Debian's nginx and caddy), all
# against `wxlogin demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

cargo fmt --check
scripts/layering.sh
cargo clippy --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi

command -v node >/dev/null || apt_install nodejs npm
command -v chromium >/dev/null || apt_install chromium
command -v nginx >/dev/null || apt_install nginx
command -v caddy >/dev/null || apt_install caddy
cargo build --bin wxlogin
export WXLOGIN_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/wxlogin"

# The mini program demo's own code, against a real `wxlogin demo`.
node --test miniprogram-demo/test/*.test.js

# Web sign-in end to end in headless Chromium (Debian's), driven by playwright-core from npm.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
node --test tests/browser/*.test.js

# Schemathesis (PyPI) against the served OpenAPI document: no 5xx, no answer outside it.
tests/schemathesis.sh

# Third parties: PyJWT and npm jose verify access tokens; nginx and caddy use forward auth.
tests/thirdparty/run.sh
