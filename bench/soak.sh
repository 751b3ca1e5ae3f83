#!/usr/bin/env bash
# Soak (not in CI): one `wxlogin serve` (Redis and PostgreSQL, sealing on) under bench/load.mjs's
# mixed load at half the rate it reaches flat out, for SOAK_MINUTES (20) minutes. Each minute:
# requests, errors, p50 and p99, the server's RSS and open file descriptors, Redis's used
# memory. After the first five minutes (SOAK_WARMUP: sessions live 60 s here, but the user
# cache keeps each new user five minutes, so Redis settles only then) each must be flat: the
# median of the last third of the minutes within 10% of the median of the first third (a
# trend, not the minute-to-minute noise of connection counts and p99), and no errors.
#
#   bench/soak.sh
#   SOAK_MINUTES=5 bench/soak.sh
#   BENCH_BIN=target/release/wxlogin bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-20}
export SOAK_WARMUP=${SOAK_WARMUP:-5}

source bench/common.sh soak
command -v node >/dev/null || apt_install nodejs

APPID=wx50a0000000000001
SECRET=soak-secret-0000000000000000000001

start_emulator "$APPID:$SECRET"

PORT=$(free_port)
write_config "$PORT" "$TEST_POSTGRES_URL" "session_ttl = 60"
RUST_LOG=warn "$BIN" serve --config "$WORK/wxlogin.toml" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
SERVER="http://127.0.0.1:$PORT"
until_up "$SERVER" || { echo "the server did not start:"; cat "$WORK/server.log"; exit 1; }

export NODES=$SERVER EMU APPID SAMPLE_APPID SAMPLE_KEY SERVER_PID REDIS_PORT
MAX=$(MODE=max DURATION_S=15 node bench/soak-load.mjs)
RATE=$((MAX / 2))
echo "flat out: $MAX requests/s; soaking at $RATE/s for $MINUTES minutes" >&2
MODE=soak RATE=$RATE DURATION_S=$((MINUTES * 60)) node bench/soak-load.mjs >"$WORK/minutes.jsonl"

python3 - "$WORK/minutes.jsonl" "$MAX" "$RATE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\n## Soak: {len(rows)} minutes at {sys.argv[3]} requests/s (flat out: {sys.argv[2]}/s)\n")
print("| minute | requests | errors | p50 ms | p99 ms | RSS MB | open fds | Redis MB |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['minute']} | {r['requests']} | {r['errors'] + r['dropped']} | {r['p50']} | {r['p99']} | "
          f"{r['rss']} | {r['fds']} | {r['redisMb']} |")
import os
warmup = int(os.environ["SOAK_WARMUP"])
steady = rows[warmup:]
failures = []
third = max(1, len(steady) // 3)
median = lambda xs: sorted(xs)[len(xs) // 2]
for key, name in [("rss", "RSS"), ("fds", "open fds"), ("redisMb", "Redis memory"), ("p99", "p99")]:
    first = median([r[key] for r in steady[:third]])
    last = median([r[key] for r in steady[-third:]])
    change = (last - first) / first if first else 0
    print(f"{name}: median {first} over minutes {warmup + 1}-{warmup + third}, {last} over the last {third} ({change:+.0%})")
    if change > 0.10:
        failures.append(f"{name} grew {change:+.0%}")
if any(r["errors"] or r["dropped"] for r in rows):
    failures.append("errors")
print(f"\nflat after {warmup} minutes: " + ("yes" if not failures else "no: " + "; ".join(failures)))
sys.exit(1 if failures else 0)
PY
