#!/usr/bin/env bash
# A local PostgreSQL for development and tests: `scripts/pg.sh start|stop|status|url`.
#
# Data lives under .sluice/pg (git-ignored), the server listens on 127.0.0.1 only,
# and runs as the `postgres` user when we are root (PostgreSQL refuses root).
# Durability (fsync, full_page_writes, synchronous_commit) is kept unless
# SLUICE_PG_FAST=1 trades it for speed, as the tests and benchmarks do. The setting
# lives in $DATA/sluice-durability.conf and is applied to a running server too
# (by a reload), so `make run` after `make test` gets its durability back.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${SLUICE_PG_PORT:-55432}
SUPERUSER=sluice

# The data folder: .sluice/pg, unless the postgres user cannot reach it (a checkout
# under a closed home folder), then a folder of its own under /var/tmp.
resolve_data() {
  if [ -n "${SLUICE_PG_DATA:-}" ]; then echo "$SLUICE_PG_DATA"; return; fi
  mkdir -p "$ROOT/.sluice"
  if [ "$(id -u)" -eq 0 ] && ! (cd / && runuser -u postgres -- test -x "$ROOT/.sluice"); then
    echo "/var/tmp/sluice-pg-$(echo "$ROOT" | md5sum | cut -c1-12)/data"
  else
    echo "$ROOT/.sluice/pg"
  fi
}
DATA=$(resolve_data)
LOG=$DATA.log

say() { echo "pg: $*" >&2; }

find_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
}

ensure_binaries() {
  BIN=$(find_bindir)
  if [ -z "$BIN" ]; then
    say "no PostgreSQL server binaries found; installing the Debian package"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    BIN=$(find_bindir)
    [ -n "$BIN" ] || { say "PostgreSQL installation failed"; exit 1; }
  fi
}

# As root, commands run as `postgres`; otherwise as ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

is_running() {
  [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
  mkdir -p "$DATA"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$DATA"
    chmod 700 "$DATA"
  fi
  say "initialising a cluster in $DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust --no-sync \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
}

# on (durable) unless SLUICE_PG_FAST=1
wanted_durability() {
  if [ "${SLUICE_PG_FAST:-}" = 1 ]; then echo off; else echo on; fi
}

# Write the durability settings the server reads at start and at a reload.
write_durability() {
  local value conf=$DATA/sluice-durability.conf
  value=$(wanted_durability)
  grep -q "sluice-durability.conf" "$DATA/postgresql.conf" ||
    echo "include_if_exists = 'sluice-durability.conf'" >>"$DATA/postgresql.conf"
  printf 'fsync = %s\nfull_page_writes = %s\nsynchronous_commit = %s\n' \
    "$value" "$value" "$value" >"$conf"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$conf"
  return 0
}

sql() {
  "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres -tAc "$1"
}

# A server that was already running: reload it if its durability is not the one asked for.
apply_durability() {
  local value source i
  value=$(wanted_durability)
  [ "$(sql "SHOW fsync")" = "$value" ] && return 0
  source=$(sql "SELECT source FROM pg_settings WHERE name = 'fsync'")
  if [ "$source" = "command line" ]; then
    say "warning: this server was started with fsync on its command line; run"
    say "\`$0 stop\` and start it again to get fsync = $value"
    return 0
  fi
  sql "SELECT pg_reload_conf()" >/dev/null
  for i in $(seq 50); do
    [ "$(sql "SHOW fsync")" = "$value" ] && break
    sleep 0.1
  done
  [ "$value" = on ] && sql "CHECKPOINT" >/dev/null  # what was written unsynced, to disk
  say "durability settings now $value"
}

start() {
  ensure_binaries
  [ -f "$DATA/PG_VERSION" ] || init_cluster
  write_durability
  if ! is_running; then
    touch "$LOG"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$LOG"
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories='' \
       -c max_connections=300" >/dev/null
    say "started on 127.0.0.1:$PORT (fsync $(wanted_durability); log: $LOG)"
  else
    apply_durability
  fi
  create_db "${1:-sluice}"
}

create_db() {
  local name=$1
  if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" "$name"
  fi
}

stop() {
  ensure_binaries
  if is_running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; say "stopped"; fi
}

case "${1:-}" in
  start) start "${2:-sluice}" ;;
  stop) stop ;;
  status) ensure_binaries; if is_running; then echo running; else echo stopped; exit 3; fi ;;
  url) echo "postgresql://$SUPERUSER@127.0.0.1:$PORT/${2:-sluice}" ;;
  *) echo "usage: $0 start [DB]|stop|status|url [DB]" >&2; exit 2 ;;
esac
