#!/usr/bin/env bash
# Chaos under load, on loopback: two `wxlogin serve` nodes sharing one Redis (with an append-only
# file, so that a restart keeps its data) and one PostgreSQL, `wxlogin emulator` as WeChat, and
# 60 s of mixed load (bench/chaos-load.mjs: first and returning logins, /me, decrypt, phone) sent
# round-robin to both. Meanwhile: Redis restarts, PostgreSQL restarts, WeChat answers -1 for a
# while and then slowly, and node B is killed with SIGKILL and started again.
#
# Afterwards it prints, per fault, its window and the answers inside it by status, and checks:
# no 500 at any time; errors (503, 502, refused connections to the killed node) only inside a
# window; every first login that answered 200 has exactly one user in SQL, with its identity;
# no user without an identity; every user an answer named exists. Exit 1 where one fails.
#
#   bench/chaos.sh                    # about two minutes
#   CHAOS_DURATION=90 bench/chaos.sh
#   BENCH_BIN=target/release/wxlogin bench/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${CHAOS_DURATION:-60}

source bench/common.sh chaos
command -v node >/dev/null || apt_install nodejs
command -v psql >/dev/null || apt_install postgresql-client
cleanup_more() { [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true; }
now_ms() { date +%s%3N; }

APPID=wxc4a0500000000001
SECRET=chaos-secret-000000000000000000001

# A Redis of its own that keeps its data across a restart.
REDIS_OWN=$(free_port)
start_redis() {
  redis-server --port "$REDIS_OWN" --bind 127.0.0.1 --appendonly yes --appendfsync always \
    --save '' --dir "$WORK" --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
  for _ in $(seq 100); do redis-cli -p "$REDIS_OWN" ping >/dev/null 2>&1 && return; sleep 0.05; done
}
start_redis

psql -q "$TEST_POSTGRES_URL" -c "CREATE DATABASE chaos" >/dev/null
DB_URL="${TEST_POSTGRES_URL%/postgres}/chaos"

start_emulator "$APPID:$SECRET"

SEALING="1:$(head -c 32 /dev/urandom | base64)"
declare -A NODE_PORT NODE_PID
start_node() { # name
  local name=$1 port=${NODE_PORT[$1]:-$(free_port)}
  NODE_PORT[$name]=$port
  WXLOGIN_LISTEN="127.0.0.1:$port" WXLOGIN_DATABASE_URL="$DB_URL" \
    WXLOGIN_REDIS_URL="redis://127.0.0.1:$REDIS_OWN" WXLOGIN_SEALING_KEYS="$SEALING" \
    WXLOGIN_RATE_LIMIT_PER_MINUTE=0 WXLOGIN_WECHAT_API_BASE="$EMU" \
    WXLOGIN_MINIPROGRAM_APPID="$APPID" WXLOGIN_MINIPROGRAM_SECRET="$SECRET" RUST_LOG=warn \
    "$BIN" serve >>"$WORK/node-$name.log" 2>&1 &
  NODE_PID[$name]=$!
  PIDS+=($!)
  until_up "http://127.0.0.1:$port" && return
  echo "node $name did not start"; cat "$WORK/node-$name.log"; exit 1
}
# The second mini program (WeChat's sample) is added through the file both nodes read.
cat >"$WORK/apps.toml" <<TOML
[[miniprogram]]
appid = "$APPID"
secret = "$SECRET"

[[miniprogram]]
appid = "$SAMPLE_APPID"
secret = "sample-secret"
TOML
export WXLOGIN_CONFIG="$WORK/apps.toml"
start_node a
start_node b
A="http://127.0.0.1:${NODE_PORT[a]}"
B="http://127.0.0.1:${NODE_PORT[b]}"

# Until both nodes' /readyz say 200.
until_ready() {
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] \
      && [ "$(curl -s -o /dev/null -w '%{http_code}' "$B/readyz")" = 200 ] && return
    sleep 0.05
  done
  echo "not ready again after 30 s" >&2
}
FAULTS="$WORK/faults.txt"
: >"$FAULTS"
fault() { echo "$1|$2|$3" >>"$FAULTS"; } # name start end (epoch ms)
emu_fault() { curl -sf -X POST "$EMU/__emulator/faults" -H 'content-type: application/json' -d "$1" >/dev/null; }

NODES="$A,$B" EMU="$EMU" APPID="$APPID" SAMPLE_APPID="$SAMPLE_APPID" SAMPLE_KEY="$SAMPLE_KEY" \
  DURATION_S="$DURATION" node bench/chaos-load.mjs "$WORK/requests.jsonl" &
LOAD=$!
for _ in $(seq 600); do [ -f "$WORK/requests.jsonl.start" ] && break; sleep 0.1; done
START=$(cat "$WORK/requests.jsonl.start")
at() { # seconds after the start
  local wait_ms=$((START + $1 * 1000 - $(now_ms)))
  [ "$wait_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))" || true
}

at $((DURATION / 10))
t0=$(now_ms)
redis-cli -p "$REDIS_OWN" shutdown >/dev/null 2>&1 || true
sleep 1
start_redis
until_ready
fault "Redis restarts" "$t0" "$(now_ms)"

at $((DURATION * 25 / 100))
t0=$(now_ms)
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w restart -o "-p $PG_PORT -k $PG_DATA \
  -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=500" >/dev/null
until_ready
fault "PostgreSQL restarts" "$t0" "$(now_ms)"

# WeChat misbehaving on the login and phone paths for 4 s: the fault's name, then its JSON fields.
wechat_fault() {
  local t0
  t0=$(now_ms)
  for path in /sns/jscode2session /wxa/business/getuserphonenumber; do
    emu_fault "{\"path\":\"$path\",$2,\"times\":100000}"
  done
  sleep 4
  curl -sf -X DELETE "$EMU/__emulator/faults" >/dev/null
  fault "$1" "$t0" "$(now_ms)"
}

at $((DURATION * 40 / 100))
wechat_fault "WeChat answers -1" '"errcode":-1,"errmsg":"system error"'

at $((DURATION * 55 / 100))
wechat_fault "WeChat answers slowly" '"delayMs":1500'

at $((DURATION * 70 / 100))
t0=$(now_ms)
kill -9 "${NODE_PID[b]}"
sleep 2
start_node b
until_ready
fault "node B killed (SIGKILL), started again" "$t0" "$(now_ms)"

wait "$LOAD"

# The first logins that answered 200, for the SQL checks.
python3 - "$WORK/requests.jsonl" >"$WORK/first.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] == "first login" and r["status"] == 200:
        print(f'{r["user"]}\t{r["openid"]}')
PY
psql -qAt "$DB_URL" >"$WORK/sql.txt" <<SQL
CREATE TEMP TABLE answered (user_id TEXT, openid TEXT);
\\copy answered FROM '$WORK/first.tsv'
SELECT
  (SELECT count(*) FROM answered),
  (SELECT count(*) FROM answered a WHERE (SELECT count(*) FROM identities i WHERE i.openid = a.openid) <> 1),
  (SELECT count(*) FROM answered a WHERE NOT EXISTS
    (SELECT 1 FROM identities i WHERE i.openid = a.openid AND i.user_id = a.user_id)),
  (SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id)),
  (SELECT count(*) FROM answered a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.user_id));
SQL

python3 - "$WORK/requests.jsonl" "$FAULTS" "$WORK/sql.txt" <<'PY'
import collections, json, sys
GRACE_MS = 1000  # answers already in flight when a fault ended
requests = [json.loads(l) for l in open(sys.argv[1])]
faults = [l.rstrip("\n").split("|") for l in open(sys.argv[2]) if l.strip()]
faults = [(name, int(a), int(b) + GRACE_MS) for name, a, b in faults]
start = min(r["t"] for r in requests)
rows = collections.OrderedDict((f[0], collections.Counter()) for f in faults)
rows["outside every window"] = collections.Counter()
for r in requests:
    name = next((f[0] for f in faults if f[1] <= r["t"] <= f[2]), "outside every window")
    rows[name][r["status"]] += 1
def window(name):
    f = next((f for f in faults if f[0] == name), None)
    return f"{(f[1]-start)/1000:5.1f}-{(f[2]-start)/1000:5.1f} s" if f else "-"
print()
print(f"## Chaos under load ({len(requests)} requests, two nodes, {(max(r['t'] for r in requests)-start)/1000:.0f} s)")
print()
print("| fault | window | requests | 200 | 4xx | 500 | 502 | 503 | refused |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for name, c in rows.items():
    n = sum(c.values())
    four = sum(v for k, v in c.items() if 400 <= k < 500)
    print(f"| {name} | {window(name)} | {n} | {c[200]} | {four} | {c[500]} | {c[502]} | {c[503]} | {c[0]} |")
by_kind = collections.Counter((r["kind"], r["status"]) for r in requests if r["status"] != 200)
print("\nanswers other than 200, by workload: " + ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(by_kind.items())))
answered, not_one, not_theirs, bare, missing = (int(x) for x in open(sys.argv[3]).read().strip().split("|"))
print()
print(f"first logins answered 200: {answered}; without exactly one identity: {not_one}; "
      f"whose identity is another user's: {not_theirs}; users without an identity: {bare}; "
      f"answered users missing in SQL: {missing}")
failures = []
if any(c[500] for c in rows.values()):
    failures.append("a 500")
outside = rows["outside every window"]
if sum(v for k, v in outside.items() if k != 200):
    failures.append(f"errors outside every window: {dict(outside)}")
unexpected = {k for c in rows.values() for k in c if k not in (0, 200, 502, 503)}
if unexpected:
    failures.append(f"unexpected statuses: {sorted(unexpected)}")
if not_one or not_theirs or bare or missing:
    failures.append("SQL does not match the answers")
print("\nPASS" if not failures else "\nFAIL: " + "; ".join(failures))
sys.exit(1 if failures else 0)
PY
