# What the bench scripts start with; source it from the repository's root, with the work
# folder's name: `source bench/common.sh chaos`. It starts Redis and PostgreSQL
# (scripts/services.sh), finds the wxlogin binary (BENCH_BIN, or a release build), makes WORK
# (removed at exit with every process in PIDS; a script may define `cleanup_more`), and defines
# `start_emulator APPID:SECRET`, which serves WeChat with that app and WeChat's published
# sample (SAMPLE_APPID, SAMPLE_KEY) and sets EMU and EMU_PID, `until_up URL`, and
# `write_config`, which writes $WORK/wxlogin.toml for `wxlogin serve`.

source scripts/services.sh
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN
else
  cargo build --release --bin wxlogin >&2
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/wxlogin
fi
WORK=$(mktemp -d "/tmp/wxlogin-$1.XXXXXX")
PIDS=()
cleanup_more() { :; }
cleanup() {
  # (Waited for with stderr closed, so that bash reports no "Killed" line for each.)
  for p in "${PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  cleanup_more
  rm -rf "$WORK"
  stop_services
}
trap cleanup EXIT

SAMPLE_APPID=wx4f4bc4dec97d474b
SAMPLE_KEY=tiihtNczf5v6AKRyjwEUhQ==

# Whether the wxlogin at a URL answers /healthz within ten seconds.
until_up() {
  for _ in $(seq 200); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.05; done
  return 1
}

start_emulator() { # appid:secret
  local port
  port=$(free_port)
  "$BIN" emulator --listen "127.0.0.1:$port" --app "$1" --app "$SAMPLE_APPID:sample-secret" \
    >"$WORK/emulator.log" 2>&1 &
  EMU_PID=$!
  PIDS+=("$EMU_PID")
  EMU="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$EMU/__emulator/calls" >/dev/null && return; sleep 0.05; done
  echo "the emulator did not start:"; cat "$WORK/emulator.log"; exit 1
}

# `write_config PORT DATABASE_URL [TOP-LEVEL LINES] [TABLES]`: $WORK/wxlogin.toml for a server
# on PORT with that database, the shared Redis, the emulator as WeChat, sealing on (off with
# SEALING=0), no per-IP limit (the load comes from one IP: the limit would measure itself), and
# the mini programs APPID (SECRET) and WeChat's sample.
write_config() {
  cat >"$WORK/wxlogin.toml" <<TOML
listen = "127.0.0.1:$1"
database_url = "$2"
redis_url = "$TEST_REDIS_URL"
wechat_api_base = "$EMU"
rate_limit_per_minute = 0
$([ "${SEALING:-1}" = 0 ] || echo "sealing_keys = \"1:$(head -c 32 /dev/urandom | base64)\"")
${3:-}

[[miniprogram]]
appid = "$APPID"
secret = "$SECRET"

[[miniprogram]]
appid = "$SAMPLE_APPID"
secret = "sample-secret"
${4:-}
TOML
}
