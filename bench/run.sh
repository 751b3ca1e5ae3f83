#!/usr/bin/env bash
# The benchmark kit: real Redis and PostgreSQL (then SQLite), `wxlogin emulator` as WeChat and
# `wxlogin serve`, all on loopback, driven by wrk for a bounded time per workload. Prints one
# table per pass: requests/s, p50, p99, errors, the server's peak RSS, and each figure as a ratio
# to /healthz of the same run (these machines are noisy; ratios travel, absolutes do not).
#
#   bench/run.sh                 # PostgreSQL pass, then SQLite pass
#   bench/run.sh --scale         # also: 1,000,000 users in PostgreSQL and 1,000,000 sessions in Redis
#   BENCH_DURATION=10 BENCH_CONNECTIONS=64 bench/run.sh
#   BENCH_ONLY='me|login' bench/run.sh     # only the workloads whose names match (and /healthz)
#   BENCH_PROFILE=/tmp/prof bench/run.sh   # also a perf profile of the serving process per workload
#   BENCH_SQLITE=0 bench/run.sh            # the PostgreSQL pass only
#   BENCH_BIN=/tmp/wxlogin-old bench/run.sh # another build (to compare two in turn)
#   BENCH_OPEN=0 bench/run.sh              # without the open-loop pass (oha) after each table
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=0
[ "${1:-}" = "--scale" ] && SCALE=1
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=2
ONLY=${BENCH_ONLY:-}
PROFILE=${BENCH_PROFILE:-}

source bench/common.sh bench
source bench/wrk.sh
command -v wrk >/dev/null || apt_install wrk
# The open-loop pass needs oha (from crates.io); BENCH_OPEN=0 leaves it out.
OPEN=${BENCH_OPEN:-1}
if [ "$OPEN" = 1 ] && ! command -v oha >/dev/null; then
  cargo install oha --locked >&2
fi
if [ -n "$PROFILE" ]; then
  command -v perf >/dev/null || apt_install linux-perf
  mkdir -p "$PROFILE"
fi

APPID=wxbe0c000000000001
SECRET=bench-secret-00000000000000000001
# An app bound to no Open Platform account: its logins carry no unionid, its open data does.
NOU_APPID=wxbe0c000000000003

start_emulator "$APPID:$SECRET"

SERVER_PID=
start_server() { # database-url
  local port
  PREFIX="bench:$RANDOM:"
  port=$(free_port)
  write_config "$port" "$1" "redis_prefix = \"$PREFIX\"" "
[[miniprogram]]
appid = \"$NOU_APPID\"
secret = \"$SECRET\""
  # The introspection client as an environment variable, which builds from before it ignore.
  WXLOGIN_CLIENTS=bench:bench-secret-0123456789 RUST_LOG=warn "$BIN" serve --config "$WORK/wxlogin.toml" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER="http://127.0.0.1:$port"
  until_up "$SERVER" && return
  echo "server did not start:"; cat "$WORK/server.log"; exit 1
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
peak_rss_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

# Rows: name rps p50 p99 errors rss
ROWS=()
# Requests per second of each closed-loop row of the pass, by name (for the open-loop pass).
declare -A RPS=()
# row name command args...: runs one workload (unless BENCH_ONLY leaves it out) and keeps its row.
row() {
  local name=$1
  shift
  if [ -n "$ONLY" ] && [[ "$name" != "GET /healthz"* ]] && ! [[ "$name" =~ $ONLY ]]; then return; fi
  SLUG=$(tr -c 'A-Za-z0-9\n' '_' <<<"$PASS $name" | tr -s _)
  local fig
  fig=$("$@")
  ROWS+=("$name|$fig|$(peak_rss_mb)")
  RPS[$name]=${fig%% *}
}
# The yardstick is the mean of the /healthz runs (one first, one last), so that the machine
# drifting during the pass moves every ratio alike.
print_table() { # title
  echo
  echo "## $1 (wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION}s each)"
  echo
  printf '| %-38s | %9s | %8s | %8s | %6s | %8s | %9s | %9s | %10s |\n' workload "req/s" "p50 ms" "p99 ms" errors "peak RSS" "CPU µs/req" "Redis µs" "vs healthz"
  printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------" "-----------" "----------" "----------" "--------" "----------" "-----------" "-----------" "------------"
  local base sum=0 n=0
  for r in "${ROWS[@]}"; do
    IFS='|' read -r name fig _ <<<"$r"
    read -r rps _ <<<"$fig"
    if [[ "$name" == "GET /healthz"* ]]; then sum=$((sum + rps)); n=$((n + 1)); fi
  done
  base=$((n > 0 ? sum / n : 0))
  for r in "${ROWS[@]}"; do
    IFS='|' read -r name fig rss <<<"$r"
    read -r rps p50 p99 errors cpu redis <<<"$fig"
    printf '| %-38s | %9s | %8s | %8s | %6s | %5s MB | %10s | %9s | %10s |\n' "$name" "$rps" "$p50" "$p99" "$errors" "$rss" "$cpu" "$redis" \
      "$(python3 -c "print(f'{$rps/$base:.2f}' if $base else '-')")"
  done
  ROWS=()
}

# Open loop: oha sends at a fixed rate (half the closed-loop maximum just measured) over the same
# connections, and counts each request's latency from the moment it was due
# (--latency-correction), so a stall shows in p99 as the users behind it would see it; wrk's
# closed loop waits instead, and understates it.
OPEN_ROWS=()
open_loop() { # name closed-loop-row url header [body-lines-file]
  local name=$1 closed=${RPS[$2]:-0} url=$3 header=$4 lines=${5:-}
  [ "$closed" -gt 0 ] || return 0
  local rate=$((closed / 2))
  local args=(-z "${DURATION}s" -q "$rate" -c "$CONNECTIONS" --latency-correction --no-tui
    --output-format json -H "$header")
  [ -n "$lines" ] && args+=(-m POST -T application/json -Z "$lines")
  oha "${args[@]}" "$url" >"$WORK/open.json"
  OPEN_ROWS+=("$name|$rate|$(python3 - "$WORK/open.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["latencyPercentiles"]
ms = lambda k: f"{p[k] * 1000:.2f}" if p.get(k) is not None else "-"
codes = r.get("statusCodeDistribution", {})
# Requests still out when the time is up are oha's to count, not failures.
errors = sum(v for k, v in r.get("errorDistribution", {}).items() if "deadline" not in k)
# A 401 here is a code drawn twice (WeChat's 40163 from the replay cache, no call to WeChat).
twice = codes.get("401", 0)
bad = sum(v for k, v in codes.items() if k not in ("200", "401")) + errors
print(f"{r['summary']['requestsPerSec']:.0f}|{ms('p50')}|{ms('p99')}|{ms('p99.9')}|{twice}|{bad}")
PY
)")
}
print_open() {
  [ ${#OPEN_ROWS[@]} -gt 0 ] || return 0
  echo
  echo "Open loop (oha, $CONNECTIONS connections, ${DURATION}s each, at half the closed-loop maximum):"
  echo
  printf '| %-38s | %8s | %8s | %8s | %8s | %8s | %10s | %6s |\n' workload "rate /s" "served/s" "p50 ms" "p99 ms" "p99.9 ms" "code twice" errors
  printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------" "----------" "----------" "----------" "----------" "----------" "------------" "--------"
  for r in "${OPEN_ROWS[@]}"; do
    IFS='|' read -r name rate served p50 p99 p999 twice bad <<<"$r"
    printf '| %-38s | %8s | %8s | %8s | %8s | %8s | %10s | %6s |\n' "$name" "$rate" "$served" "$p50" "$p99" "$p999" "$twice" "$bad"
  done
  OPEN_ROWS=()
}

run_pass() { # title database-url
  PASS=$1
  start_server "$2"
  # A signed-in user for /me, and one whose session_key is WeChat's published sample's.
  local token sample_token signed_in access
  signed_in=$(sign_in "$SERVER" "$APPID" bench-me0)
  token=$(json '["token"]' <<<"$signed_in")
  # (Empty from a build before access tokens: their rows are then left out.)
  access=$(json '.get("accessToken", "")' <<<"$signed_in")
  printf 'token=%s' "$access" >"$WORK/introspect.form"
  sample_token=$(sign_in "$SERVER" "$SAMPLE_APPID" band "$SAMPLE_KEY" | json '["token"]')
  write_sample "$WORK/decrypt.json"
  # A session whose identity has no unionid, and open data that carries one: decryption learns
  # it once, then is computation alone.
  emu_post /apps "{\"appid\":\"$NOU_APPID\",\"secret\":\"$SECRET\",\"unionid\":false}" >/dev/null
  local nou_token
  nou_token=$(sign_in "$SERVER" "$NOU_APPID" bench-nou | json '["token"]')
  emu_post /encrypt "{\"appid\":\"$NOU_APPID\",\"user\":\"bench-nou\",\"data\":{\"unionId\":\"oUNIONbenchnou000000000000000\",\"nickName\":\"Band\"}}" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); json.dump({"encryptedData": d["encryptedData"], "iv": d["iv"]}, sys.stdout)' >"$WORK/decrypt-unionid.json"
  # Returning users: 1000 users signed in once before the run.
  mint login ret- 1000 1000 "$WORK/warm.codes"
  xargs -P 8 -I{} curl -sf -o /dev/null -X POST "$SERVER/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"code\":\"{}\",\"appid\":\"$APPID\"}" <"$WORK/warm.codes"
  # More codes than the fastest run can use: a run that runs out would count errors.
  local n=$((DURATION * 25000))
  mint login ret- 1000 "$n" "$WORK/returning.codes"
  mint login "new-$RANDOM-" "$n" "$n" "$WORK/new.codes"
  mint phone bench-me 1 "$n" "$WORK/phone.codes"
  mint login up- 1000 "$((DURATION * 200000))" "$WORK/upstream.codes"

  local login="{\"code\":\"%s\",\"appid\":\"$APPID\"}"
  row "GET /healthz" fixed "$SERVER/healthz" GET -
  row "GET /api/v1/me" fixed "$SERVER/api/v1/me" GET - "Authorization: Bearer $token"
  # One Redis round trip and a 401, nothing else: what a round trip costs, next to /me's two.
  row "GET /api/v1/me (unknown token: 401)" fixed "$SERVER/api/v1/me" GET - "Authorization: Bearer $(python3 -c 'import uuid; print(uuid.uuid4())')" expected
  if [ -n "$access" ]; then
    row "GET /api/v1/me (access token)" fixed "$SERVER/api/v1/me" GET - "Authorization: Bearer $access"
    row "GET /api/v1/authz (forward auth)" fixed "$SERVER/api/v1/authz" GET - "Authorization: Bearer $token"
    row "GET /api/v1/authz (access token)" fixed "$SERVER/api/v1/authz" GET - "Authorization: Bearer $access"
    row "POST /oauth2/introspect (access token)" fixed "$SERVER/oauth2/introspect" POST \
      "$WORK/introspect.form" "Authorization: Basic $(printf 'bench:bench-secret-0123456789' | base64)" \
      "" application/x-www-form-urlencoded
    row "POST /api/v1/auth/token" fixed "$SERVER/api/v1/auth/token" POST - "Authorization: Bearer $token"
  fi
  row "POST /api/v1/wechat/decrypt (sample)" fixed "$SERVER/api/v1/wechat/decrypt" POST "$WORK/decrypt.json" "Authorization: Bearer $sample_token"
  row "POST /api/v1/wechat/decrypt (learns unionId)" fixed "$SERVER/api/v1/wechat/decrypt" POST "$WORK/decrypt-unionid.json" "Authorization: Bearer $nou_token"
  row "POST /api/v1/auth/login (returning)" fresh "$SERVER/api/v1/auth/login" "$WORK/returning.codes" POST "$login"
  row "POST /api/v1/auth/login (new user)" fresh "$SERVER/api/v1/auth/login" "$WORK/new.codes" POST "$login"
  row "POST /api/v1/me/phone (code)" fresh "$SERVER/api/v1/me/phone" "$WORK/phone.codes" POST '{"code":"%s"}' "Authorization: Bearer $token"
  CPU_PIDS=$EMU_PID row "emulator GET /sns/jscode2session" fresh "$EMU" "$WORK/upstream.codes" GET "/sns/jscode2session?appid=$APPID&secret=$SECRET&js_code=%s&grant_type=authorization_code"
  row "GET /healthz (again, last)" fixed "$SERVER/healthz" GET -
  if [ "$SCALE" = 1 ] && [[ "$2" == postgres* ]]; then
    scale_up "$2"
    row "GET /api/v1/me (1M users, 1M sessions)" fixed "$SERVER/api/v1/me" GET - "Authorization: Bearer $token"
    mint login ret- 1000 "$n" "$WORK/returning2.codes"
    row "POST /api/v1/auth/login (returning, 1M)" fresh "$SERVER/api/v1/auth/login" "$WORK/returning2.codes" POST "$login"
  fi
  if [ "$OPEN" = 1 ]; then
    local me_row="GET /api/v1/me" login_row="POST /api/v1/auth/login (returning)"
    if [ -z "$ONLY" ] || [[ "$me_row" =~ $ONLY ]]; then
      open_loop "$me_row" "$me_row" "$SERVER/api/v1/me" "Authorization: Bearer $token"
    fi
    if [ -z "$ONLY" ] || [[ "$login_row" =~ $ONLY ]]; then
      # Bodies with fresh codes of returning users. oha draws a line at random for each
      # request, so fifty times as many lines as requests: about 1% of the requests draw a code
      # drawn before and get WeChat's 40163 (the "code used twice" column).
      mint login ret- 1000 $((${RPS[$login_row]:-0} / 2 * DURATION * 50)) "$WORK/open.codes"
      python3 -c "
import sys
for code in open(sys.argv[1]):
    print('{\"code\":\"%s\",\"appid\":\"%s\"}' % (code.strip(), sys.argv[2]))" "$WORK/open.codes" "$APPID" >"$WORK/open.bodies"
      open_loop "$login_row" "$login_row" "$SERVER/api/v1/auth/login" "content-type: application/json" "$WORK/open.bodies"
    fi
  fi
  print_table "$1"
  print_open
  stop_server
}

# 1,000,000 users with an identity each in PostgreSQL, 1,000,000 live sessions in Redis; prints
# the bytes one session takes in Redis.
scale_up() { # database-url
  echo "filling: 1,000,000 users and identities, 1,000,000 sessions" >&2
  psql -q "$1" <<SQL
INSERT INTO users (id, created_at, updated_at)
  SELECT 'scale-' || g, 1700000000, 1700000000 FROM generate_series(1, 1000000) g;
INSERT INTO identities (provider, appid, openid, unionid, user_id, created_at)
  SELECT 'miniprogram', '$APPID', 'oScale' || g, 'uScale' || g, 'scale-' || g, 1700000000 FROM generate_series(1, 1000000) g;
ANALYZE users; ANALYZE identities;
SQL
  local redis_port=${TEST_REDIS_URL##*:}
  # A session as the server stored it at a login of this run: its length is the one filled in.
  local real length before after
  # (head closes the pipe early: the scan's SIGPIPE is not a failure.)
  real=$(redis-cli -p "$redis_port" --scan --pattern "${PREFIX}sess:*" | head -1 || true)
  length=$(redis-cli -p "$redis_port" strlen "$real")
  used() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r'; }
  before=$(used)
  fill "$length" | redis-cli -p "$redis_port" --pipe >/dev/null
  # Redis grows its hash tables by rehashing a little at a time (about a millisecond in every
  # 100): until it is done, both tables take memory and every lookup checks both. A million keys
  # take it a second or two.
  sleep 5
  after=$(used)
  echo "bytes per session in Redis: $(( (after - before) / 1000000 )) (used_memory over 1,000,000 sessions of $length bytes, the length the server stores)"
}

# The Redis commands of 1,000,000 sessions as a mini program login writes them
# (src/store/sessions.rs): key and time to live as the server's, values of the given length
# (the sealed session: random bytes, since only the size matters here).
fill() { # value-length
  python3 - "$PREFIX" "$1" <<'PY'
import base64, hashlib, os, sys
prefix, length = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def resp(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
for i in range(1_000_000):
    digest = hashlib.sha256(i.to_bytes(16, "big")).digest()
    sid = base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
    out.write(resp("SET", f"{prefix}sess:{sid}", os.urandom(length), "EX", 604800))
PY
}

run_pass "PostgreSQL + Redis" "$TEST_POSTGRES_URL"
[ "${BENCH_SQLITE:-1}" = 0 ] || run_pass "SQLite + Redis" "sqlite://$WORK/bench.db?mode=rwc"
