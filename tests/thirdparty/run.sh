#!/usr/bin/env bash
# Third parties against a real `wxlogin demo`: PyJWT (PyPI) and `jose` (npm) verify its access
# tokens offline from its JWKS; Debian's nginx (auth_request) and caddy (forward_auth) protect
# an echo upstream with /api/v1/authz; Tencent Cloud's and Alibaba Cloud's Python SDKs sign SMS
# requests that the emulator must accept, and check the signatures of wxlogin's own client. Called by scripts/test.sh (which installs nginx and
# caddy) with WXLOGIN_BIN set.
set -euo pipefail
cd "$(dirname "$0")"
BIN=$(realpath "${WXLOGIN_BIN:-../../target/debug/wxlogin}")
python3 -c 'import jwt' 2>/dev/null || python3 -m pip install -q "pyjwt[crypto]"
python3 -c 'import tencentcloud.sms, aliyunsdkcore' 2>/dev/null ||
  python3 -m pip install -q tencentcloud-sdk-python-common tencentcloud-sdk-python-sms \
    aliyun-python-sdk-core
npm ci --no-audit --no-fund --loglevel=error

WORK=$(mktemp -d /tmp/wxlogin-3p.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; return 1; }

PORT=$(free_port); EMU_PORT=$(free_port); ECHO_PORT=$(free_port); NGINX_PORT=$(free_port); CADDY_PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
"$BIN" demo --listen "127.0.0.1:$PORT" --emulator-listen "127.0.0.1:$EMU_PORT" \
  --database-url "sqlite://$WORK/3p.db?mode=rwc" --rate-limit-per-minute 0 >"$WORK/demo.log" 2>&1 &
PIDS+=($!)
python3 echo_upstream.py "$ECHO_PORT" "$WORK/hits" &
PIDS+=($!)
wait_for "$BASE/healthz"

fill() {
  sed -e "s|@WORK@|$WORK|g" -e "s|@WXLOGIN@|127.0.0.1:$PORT|g" -e "s|@API@|127.0.0.1:$ECHO_PORT|g" \
    -e "s|@PORT@|$2|g" "$1" >"$WORK/$(basename "$1")"
}
fill nginx.conf "$NGINX_PORT"
fill Caddyfile "$CADDY_PORT"
nginx -c "$WORK/nginx.conf" -p "$WORK" -g "user $(id -un);" &
PIDS+=($!)
HOME=$WORK caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$NGINX_PORT/"
wait_for "http://127.0.0.1:$CADDY_PORT/"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
CODE=$(curl -sf -X POST "http://127.0.0.1:$EMU_PORT/__emulator/login" -H 'content-type: application/json' \
  -d '{"appid":"wx1000000000000001","user":"verifier"}' | json '["code"]')
ACCESS=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"code\":\"$CODE\"}" | json '["accessToken"]')

python3 pyjwt_verify.py "$BASE" "$ACCESS"
node jose_verify.mjs "$BASE" "$ACCESS"
python3 proxies.py "$BASE" "http://127.0.0.1:$EMU_PORT" "$WORK/hits" \
  nginx="http://127.0.0.1:$NGINX_PORT" caddy="http://127.0.0.1:$CADDY_PORT"

# SMS: each provider's official SDK signs for the emulator (the emulator's constants are
# src/config/sms.rs's); then wxlogin's own client signs for a capture server that checks the
# signature with the SDK's code.
python3 tencent_sms.py sdk "http://127.0.0.1:$EMU_PORT" AKIDwxloginEmulator0000000000000000 \
  wxlogin-emulator-sms-secret-key-0001 1400000001 wxlogin 100001
python3 aliyun_sms.py sdk "http://127.0.0.1:$EMU_PORT" LTAIwxloginEmulator0001 \
  wxlogin-emulator-aliyun-secret-0001 wxlogin SMS_100001

# `own_client NAME SCRIPT SECRET SETTING...`: a `wxlogin serve` with these SMS settings, whose
# provider's endpoint is SCRIPT's capture server, sends a code; the server must answer 202 and
# the capture server must have found the SDK's signature.
own_client() {
  local name=$1 script=$2 secret=$3 capture sms status
  shift 3
  capture=$(free_port); sms=$(free_port)
  : >"$WORK/verdicts-$name"
  python3 "$script" capture "$capture" "$secret" "$WORK/verdicts-$name" &
  PIDS+=($!)
  env "$@" WXLOGIN_LISTEN="127.0.0.1:$sms" WXLOGIN_DATABASE_URL="sqlite://$WORK/$name.db?mode=rwc" \
    WXLOGIN_SMS_ENDPOINT="http://127.0.0.1:$capture" "$BIN" serve >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$sms/healthz"
  wait_for "http://127.0.0.1:$capture/"
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$sms/api/v1/sms/code" \
    -H 'content-type: application/json' -d '{"phoneNumber":"13800138000","purpose":"login"}')
  if [ "$status" != 202 ] || [ "$(cat "$WORK/verdicts-$name")" != match ]; then
    echo "$name: wxlogin's signature is not the SDK's: HTTP $status, $(cat "$WORK/verdicts-$name")"
    exit 1
  fi
  echo "wxlogin -> $name sdk: wxlogin's signature is the SDK's"
}
KEY="third-party-key-$RANDOM$RANDOM"
own_client tencent tencent_sms.py "$KEY" WXLOGIN_SMS_PROVIDER=tencent \
  WXLOGIN_SMS_SECRET_ID=AKIDthirdparty WXLOGIN_SMS_SECRET_KEY="$KEY" WXLOGIN_SMS_SDK_APP_ID=1400000009 \
  WXLOGIN_SMS_SIGN_NAME=wxlogin WXLOGIN_SMS_TEMPLATE_ID=100009
# A Chinese SignName: its UTF-8 is percent-encoded into the signature.
own_client aliyun aliyun_sms.py "$KEY" WXLOGIN_SMS_PROVIDER=aliyun \
  WXLOGIN_SMS_ACCESS_KEY_ID=LTAIthirdparty WXLOGIN_SMS_ACCESS_KEY_SECRET="$KEY" \
  WXLOGIN_SMS_SIGN_NAME=微信登录 WXLOGIN_SMS_TEMPLATE_ID=SMS_100009
