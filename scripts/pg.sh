#!/usr/bin/env bash
# A throw-away PostgreSQL for the job-store tests: `pg.sh start` prints a URL, `pg.sh url`, `pg.sh stop`.
# The cluster lives in $DIFFUSELLM_PG_DIR (default /tmp/diffusellm-pg-<uid>), listens only on
# 127.0.0.1 on a free port, trusts local connections and runs without fsync: never use it for data.
# As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail

DIR="${DIFFUSELLM_PG_DIR:-/tmp/diffusellm-pg-$(id -u)}"
DATA="$DIR/data"
LOCK="$DIR.lock"

find_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then echo /usr/lib/postgresql/15/bin; return; fi
  local newest
  newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [[ -n "$newest" ]]; then echo "$newest"; return; fi
  if command -v pg_ctl >/dev/null; then dirname "$(command -v pg_ctl)"; return; fi
  echo "pg.sh: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH)" >&2
  echo "pg.sh: install them, e.g.: apt-get install postgresql-15, or set PG_BIN" >&2
  exit 2
}

as_owner() {
  # PostgreSQL must not run as root: drop to the postgres user when we are root.
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() {
  echo "postgresql+psycopg://postgres@127.0.0.1:$(cat "$DIR/port")/postgres"
}

running() {
  [[ -f "$DIR/port" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
  mkdir -p "$DIR"
  [[ $(id -u) == 0 ]] && chown postgres: "$DIR"
  chmod 700 "$DIR"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
    || { echo "pg.sh: initdb failed; see $DIR/initdb.log" >&2; cat "$DIR/initdb.log" >&2; exit 2; }
}

start() {
  if running; then url; return; fi
  [[ -f "$DATA/PG_VERSION" ]] || init_cluster
  local port
  port="$(free_port)"
  # 9>&-: the server must not inherit (and so hold forever) the lock taken by this script.
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 start -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null 9>&- || { echo "pg.sh: PostgreSQL did not start; see $DIR/server.log" >&2; tail -n 20 "$DIR/server.log" >&2; exit 2; }
  as_owner sh -c "echo $port > '$DIR/port'"
  url
}

stop() {
  if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
  rm -f "$DIR/port"
}

BIN="$(find_bin)"
cmd="${1:-}"
case "$cmd" in
  start)
    exec 9>"$LOCK"
    flock 9
    start
    ;;
  stop)
    exec 9>"$LOCK"
    flock 9
    stop
    ;;
  url)
    running || { echo "pg.sh: not running; run: scripts/pg.sh start" >&2; exit 1; }
    url
    ;;
  *)
    echo "usage: scripts/pg.sh start|stop|url" >&2
    exit 2
    ;;
esac
