# Starts a throwaway Redis and PostgreSQL on free loopback ports, installing them from Debian's
# packages where missing, and exports TEST_REDIS_URL and TEST_POSTGRES_URL. Source it; call
# `stop_services` when done (it is also set as an EXIT trap).

set -euo pipefail

# Installs Debian packages, refreshing the package lists only where the first try fails.
apt_install() {
  echo "installing $* (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

need_install=()
command -v redis-server >/dev/null || need_install+=(redis-server)
command -v redis-sentinel >/dev/null || need_install+=(redis-sentinel)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_install+=(postgresql)
[ ${#need_install[@]} -eq 0 ] || apt_install "${need_install[@]}"
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVICES_DIR=$(mktemp -d /tmp/wxlogin-services.XXXXXX)
chmod 755 "$SERVICES_DIR"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir "$SERVICES_DIR" --pidfile "$SERVICES_DIR/redis.pid" --logfile "$SERVICES_DIR/redis.log"

PG_PORT=$(free_port)
PG_DATA="$SERVICES_DIR/pg"
mkdir -p "$PG_DATA"
# PostgreSQL refuses to run as root: run it as the postgres user where we are root.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$PG_DATA"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/log" -w \
  -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" start >/dev/null

# A three-node Redis Cluster; each node's cluster bus is its port + 10000, so both must be free.
cluster_ports() {
  python3 - <<'PY'
import socket
found = []
for port in range(21000, 29000, 7):
    try:
        for p in (port, port + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
    except OSError:
        continue
    found.append(port)
    if len(found) == 3:
        break
print(" ".join(map(str, found)))
PY
}
CLUSTER_PORTS=($(cluster_ports))
for p in "${CLUSTER_PORTS[@]}"; do
  mkdir -p "$SERVICES_DIR/cluster-$p"
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 5000 --save '' --appendonly no --daemonize yes --dir "$SERVICES_DIR/cluster-$p" \
    --pidfile "$SERVICES_DIR/cluster-$p/redis.pid" --logfile "$SERVICES_DIR/cluster-$p/redis.log"
done

stop_services() {
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  for pid in "$SERVICES_DIR"/redis.pid "$SERVICES_DIR"/cluster-*/redis.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  rm -rf "$SERVICES_DIR"
}
trap stop_services EXIT

for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

for p in "${CLUSTER_PORTS[@]}"; do
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 100); do
  redis-cli -p "${CLUSTER_PORTS[0]}" cluster info | grep -q cluster_state:ok && break
  sleep 0.1
done
export TEST_REDIS_CLUSTER_URLS=$(printf 'redis://127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//')
export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "Redis on $REDIS_PORT, Redis Cluster on ${CLUSTER_PORTS[*]}, PostgreSQL on $PG_PORT" >&2
