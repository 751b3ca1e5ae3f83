# The load helpers of the bench scripts; source it after bench/common.sh, with DURATION,
# CONNECTIONS, THREADS, APPID, EMU and SERVER_PID set (PROFILE and SLUG for a perf profile).
# `mint` makes wx.login codes at the emulator; `sign_in` logs a test user in; `fixed` sends one
# request again and again, `fresh` a fresh code per request, both printing
# "req/s p50_ms p99_ms errors cpu_us redis_us"; `write_sample` writes WeChat's sample's body.

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
emu_post() { curl -sf -X POST "$EMU/__emulator$1" -H 'content-type: application/json' -d "$2"; }
# Mints codes into a file, one a line (the emulator mints at most 1,000,000 a call).
mint() { # kind prefix users count file
  local left=$4 chunk
  : >"$5"
  while [ "$left" -gt 0 ]; do
    chunk=$((left < 1000000 ? left : 1000000))
    emu_post /codes "{\"appid\":\"$APPID\",\"kind\":\"$1\",\"userPrefix\":\"$2\",\"userCount\":$3,\"count\":$chunk}" \
      | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["codes"]))' >>"$5"
    left=$((left - chunk))
  done
}

# A test user's wx.login code sent to a server's login: the answer's JSON.
sign_in() { # server appid user [session key]
  local code
  code=$(emu_post /login "{\"appid\":\"$2\",\"user\":\"$3\"${4:+,\"sessionKey\":\"$4\"}}" | json '["code"]')
  curl -sf -X POST "$1/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"code\":\"$code\",\"appid\":\"$2\"}"
}

# CPU time (user + system, in clock ticks) the processes have used, together.
cpu_ticks() { # pid...
  local p
  for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ t += $14 + $15 } END { print t }'
}

# One workload: wrk for DURATION seconds; prints "req/s p50_ms p99_ms errors cpu_us redis_us",
# where cpu_us is the CPU time the serving processes ($CPU_PIDS, the server unless set) spent per
# request, and redis_us Redis's: figures that noise on a shared machine moves less than req/s.
run_wrk() { # url header script script-args...
  local url=$1 header=$2 script=$3
  shift 3
  local hdr=()
  [ -n "$header" ] && hdr=(-H "$header")
  local out pids=${CPU_PIDS:-$SERVER_PID} before after redis_pid redis_before redis_after
  redis_pid=$(cat "$SERVICES_DIR/redis.pid")
  local perf_pid=
  if [ -n "$PROFILE" ]; then
    # Software clock samples (these machines have no hardware counters), with call graphs.
    perf record -q -F 499 -g -p "${pids// /,}" -o "$PROFILE/$SLUG.data" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
  fi
  before=$(cpu_ticks $pids)
  redis_before=$(cpu_ticks "$redis_pid")
  out=$(WRK_EXPECTED=${WRK_EXPECTED:-0} wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${hdr[@]}" -s "$script" "$url" -- "$@" 2>&1 | grep '^RESULT' || true)
  after=$(cpu_ticks $pids)
  redis_after=$(cpu_ticks "$redis_pid")
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    perf report -i "$PROFILE/$SLUG.data" --stdio --no-children -g none --percent-limit 0.7 \
      --sort dso,symbol 2>/dev/null | grep -v '^#' | grep -v '^$' >"$PROFILE/$SLUG.txt" || true
  fi
  [ -n "$out" ] || { echo "0 0 0 -1 0 0"; return; }
  read -r _ requests micros p50 p99 errors <<<"$out"
  python3 -c "
per = lambda ticks: ticks / $(getconf CLK_TCK) * 1e6 / max($requests, 1)
print(f'{$requests/($micros/1e6):.0f} {$p50/1000:.2f} {$p99/1000:.2f} $errors {per($after-$before):.1f} {per($redis_after-$redis_before):.1f}')"
}
fixed() { # url method body-file|- [header] [expected: error statuses are the answer] [content-type]
  WRK_EXPECTED=$([ "${5:-}" = expected ] && echo 1 || echo 0) run_wrk "$1" "${4:-}" bench/fixed.lua "$2" "$3" ${6:+"$6"}
}
fresh() { # url codes-file method template [header]
  run_wrk "$1" "${5:-}" bench/fresh.lua "$2" "$THREADS" "$3" "$4"
}

# WeChat's published sample of encrypted open data (its session_key is SAMPLE_KEY), as a decrypt
# request's JSON body, into a file.
write_sample() { # file
  python3 - "$1" <<'PY'
import json, sys
json.dump({"encryptedData": "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==", "iv": "r7BXXKkLb8qrSNn05n0qiA=="}, open(sys.argv[1], "w"))
PY
}
