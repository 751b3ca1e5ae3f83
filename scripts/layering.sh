#!/usr/bin/env bash
# The layering of src/ (README "Layout"), checked with grep: each rule names a room and what it
# must not use. Comment lines are skipped. Exits 1 and prints the offending lines on a breach.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# forbid ROOM REGEX WHY
forbid() {
  local hits
  hits=$(grep -rnE "$2" "src/$1" --include='*.rs' | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
  if [ -n "$hits" ]; then
    echo "layering: src/$1 must not use $3:" >&2
    echo "$hits" >&2
    status=1
  fi
}

forbid api '\b(crate|super)::store\b|\bsqlx\b|\bredis::|\breqwest\b' \
  'store, sqlx, redis or reqwest (it speaks domain and accounts)'
forbid emulator '\bcrate::(wechat|api)\b|\bsuper::super::(wechat|api)\b' \
  'wechat or api (it is written from WECHAT.md on its own)'
forbid accounts '\bpoem(_openapi)?::|\bsqlx\b|\bredis::|\bcrate::store::kv\b' \
  'poem, SQL, Redis or the raw key-value store (it asks the typed stores)'
forbid domain '\bcrate::(api|accounts|store|wechat|config|app|cli|emulator)\b' \
  'another room (everyone speaks domain; it speaks nobody)'
forbid store '\bpoem(_openapi)?::|\breqwest\b|\bcrate::(api|accounts|wechat)\b' \
  'HTTP, api, accounts or wechat'
forbid wechat '\bcrate::(api|accounts|store|emulator)\b' 'another room'
forbid sms '\bcrate::(api|accounts|store|emulator|wechat)\b' 'another room'
forbid emulator '\bcrate::sms\b|\bsuper::super::sms\b' \
  'sms (it checks signatures with code of its own, written from SMS.md)'
exit $status
