#!/usr/bin/env bash
# Schemathesis (from PyPI) against the served /openapi.json of a `wxlogin demo`, signed in:
# no 5xx, and no answer outside the document (status, content type, headers, body schema).
# Seeded, so a failure replays. Called by scripts/test.sh with WXLOGIN_BIN set.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || python3 -m pip install -q schemathesis
BIN=${WXLOGIN_BIN:-target/debug/wxlogin}
WORK=$(mktemp -d /tmp/wxlogin-st.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
EMU_PORT=$(free_port)
"$BIN" demo --listen "127.0.0.1:$PORT" --emulator-listen "127.0.0.1:$EMU_PORT" \
  --database-url "sqlite://$WORK/st.db?mode=rwc" --rate-limit-per-minute 0 >"$WORK/demo.log" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
CODE=$(curl -sf -X POST "http://127.0.0.1:$EMU_PORT/__emulator/login" -H 'content-type: application/json' \
  -d '{"appid":"wx1000000000000001","user":"schemathesis"}' | json '["code"]')
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"code\":\"$CODE\"}" | json '["token"]')

# Logout would end the session the run signs its calls with; it is tested on its own elsewhere.
st run "http://127.0.0.1:$PORT/openapi.json" \
  -H "Authorization: Bearer $TOKEN" \
  --exclude-path /api/v1/auth/logout \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing --max-examples 40 --workers 1 --seed 1 --no-color
