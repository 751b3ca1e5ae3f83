#!/usr/bin/env bash
# wxlogin side by side with the Node.js service a team would write instead (bench/peer: Fastify 5
# in cluster mode, ioredis, better-sqlite3 in WAL mode, undici, Node's AES), as issue 14 measured
# them: one Redis, SQLite for both, the same emulator as WeChat, wxlogin with sealing off and no
# per-IP limit (the peer has neither). Each workload runs on one server and then the other,
# wrk with 64 connections, and the table gives both and their ratio, and the CPU time each
# server's processes (and Redis) spent per request.
#
#   bench/peers.sh
#   BENCH_DURATION=10 BENCH_CONNECTIONS=64 BENCH_ROUNDS=2 bench/peers.sh
#   BENCH_BIN=/tmp/wxlogin-old bench/peers.sh   # another wxlogin build
#   BENCH_WORKLOADS="healthz login" bench/peers.sh # some of healthz, login, me, decrypt
#   BENCH_PEER_SYNCHRONOUS=NORMAL bench/peers.sh # the peer's SQLite as better-sqlite3 ships it
#                                                # (FULL otherwise, as wxlogin's)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-1}
THREADS=2
PROFILE=

source bench/common.sh peers
source bench/wrk.sh
command -v wrk >/dev/null || apt_install wrk
if [ ! -d bench/peer/node_modules ]; then
  (cd bench/peer && npm ci --no-audit --no-fund >&2)
fi

APPID=wxbe0c000000000001
SECRET=bench-secret-00000000000000000001
start_emulator "$APPID:$SECRET"

port=$(free_port)
SEALING=0 write_config "$port" "sqlite://$WORK/wxlogin.db?mode=rwc"
RUST_LOG=warn "$BIN" serve --config "$WORK/wxlogin.toml" >"$WORK/server.log" 2>&1 &
WX_PID=$!
PIDS+=("$WX_PID")
WX="http://127.0.0.1:$port"
until_up "$WX" || { echo "wxlogin did not start:"; cat "$WORK/server.log"; exit 1; }

port=$(free_port)
SYNCHRONOUS=${BENCH_PEER_SYNCHRONOUS:-FULL} PORT=$port WECHAT=$EMU APPS="$APPID:$SECRET,$SAMPLE_APPID:sample-secret" DB="$WORK/peer.db" \
  REDIS_PORT=${TEST_REDIS_URL##*:} WORKERS=2 node bench/peer/server.mjs >"$WORK/peer.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
NODE="http://127.0.0.1:$port"
for _ in $(seq 200); do curl -sf "$NODE/healthz" >/dev/null && break; sleep 0.05; done
curl -sf "$NODE/healthz" >/dev/null || { echo "the Node peer did not start:"; cat "$WORK/peer.log"; exit 1; }
# The cluster's primary and its workers.
NODE_PIDS="$NODE_PID $(pgrep -P "$NODE_PID" | tr '\n' ' ')"

# A token for /me on a server, and one whose session_key is WeChat's sample's, for decrypt.
declare -A ME SAMPLE
ME[wx]=$(sign_in "$WX" "$APPID" peer-me | json '["token"]')
ME[node]=$(sign_in "$NODE" "$APPID" peer-me | json '["token"]')
SAMPLE[wx]=$(sign_in "$WX" "$SAMPLE_APPID" band "$SAMPLE_KEY" | json '["token"]')
SAMPLE[node]=$(sign_in "$NODE" "$SAMPLE_APPID" band "$SAMPLE_KEY" | json '["token"]')
write_sample "$WORK/decrypt.json"
# Both answer WeChat's sample alike.
for s in wx node; do
  url=$([ $s = wx ] && echo "$WX" || echo "$NODE")
  curl -sf -X POST "$url/api/v1/wechat/decrypt" -H "authorization: Bearer ${SAMPLE[$s]}" \
    -H 'content-type: application/json' -d @"$WORK/decrypt.json" | json '["watermark"]["appid"]' \
    | grep -qx "$SAMPLE_APPID" || { echo "$s did not decrypt WeChat's sample"; exit 1; }
done

login='{"code":"%s","appid":"'$APPID'"}'
# workload name -> figures, per server
declare -A FIG
measure() { # server workload
  local url pids
  if [ "$1" = wx ]; then url=$WX pids=$WX_PID; else url=$NODE pids=$NODE_PIDS; fi
  case "$2" in
    healthz) CPU_PIDS=$pids fixed "$url/healthz" GET - ;;
    me) CPU_PIDS=$pids fixed "$url/api/v1/me" GET - "Authorization: Bearer ${ME[$1]}" ;;
    decrypt) CPU_PIDS=$pids fixed "$url/api/v1/wechat/decrypt" POST "$WORK/decrypt.json" "Authorization: Bearer ${SAMPLE[$1]}" ;;
    login)
      mint login "new-$1-$RANDOM-" $((DURATION * 20000)) $((DURATION * 20000)) "$WORK/new.codes"
      CPU_PIDS=$pids fresh "$url/api/v1/auth/login" "$WORK/new.codes" POST "$login" ;;
  esac
}
read -ra WORKLOADS <<<"${BENCH_WORKLOADS:-healthz login me decrypt}"
declare -A TITLE=([healthz]="GET /healthz" [login]="POST /api/v1/auth/login (new users)"
  [me]="GET /api/v1/me" [decrypt]="POST /api/v1/wechat/decrypt (sample)")
for round in $(seq "$ROUNDS"); do
  for w in "${WORKLOADS[@]}"; do
    for s in node wx; do
      echo "round $round: $s $w" >&2
      FIG[$round,$s,$w]=$(measure $s "$w")
    done
  done
done

echo
echo "## wxlogin and the Node.js peer (wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION}s each; SQLite, one Redis; the peer's SQLite synchronous=${BENCH_PEER_SYNCHRONOUS:-FULL}, wxlogin's FULL)"
echo
printf '| %-38s | %5s | %11s | %11s | %13s | %9s | %9s | %9s | %9s |\n' workload round "Node req/s" "wxlogin /s" "wxlogin/Node" "Node µs" "wxlogin µs" "Node p99" "wx p99"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------" "-------" "-------------" "-------------" "---------------" "-----------" "------------" "-----------" "-----------"
for w in "${WORKLOADS[@]}"; do
  for round in $(seq "$ROUNDS"); do
    read -r n_rps _ n_p99 n_err n_cpu _ <<<"${FIG[$round,node,$w]}"
    read -r w_rps _ w_p99 w_err w_cpu _ <<<"${FIG[$round,wx,$w]}"
    printf '| %-38s | %5s | %11s | %11s | %13s | %9s | %10s | %9s | %9s |\n' "${TITLE[$w]}" "$round" \
      "$n_rps$([ "$n_err" = 0 ] || echo " ($n_err err)")" "$w_rps$([ "$w_err" = 0 ] || echo " ($w_err err)")" \
      "$(python3 -c "print(f'{$w_rps/max($n_rps,1):.2f}')")" "$n_cpu" "$w_cpu" "$n_p99" "$w_p99"
  done
done
echo
echo "(CPU µs: the server's processes per request — the Node cluster's primary and workers; wxlogin's one process.)"
