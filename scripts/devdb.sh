#!/usr/bin/env bash
# A project-local PostgreSQL cluster for `make demo` / `make test` when DATABASE_URL is not set:
# initdb into .pgdata/ (git-ignored), its own port and socket, no system service touched.
# Usage: scripts/devdb.sh start|stop|status
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/.pgdata/data"
sock="$root/.pgdata/run"
log="$root/.pgdata/postgres.log"
port="${CRM_PGPORT:?set CRM_PGPORT (the Makefile does)}"

find_bin() {
  local name="$1" candidate
  if command -v "$name" >/dev/null 2>&1 && "$name" --version >/dev/null 2>&1; then command -v "$name"; return; fi
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -Vr) /usr/local/pgsql/bin /opt/homebrew/bin /usr/local/bin; do
    if [ -x "$candidate/$name" ]; then echo "$candidate/$name"; return; fi
  done
  echo ""
}

initdb_bin="$(find_bin initdb)"
pg_ctl_bin="$(find_bin pg_ctl)"
if [ -z "$initdb_bin" ] || [ -z "$pg_ctl_bin" ]; then
  cat >&2 <<'MSG'
No PostgreSQL server binaries (initdb, pg_ctl) were found on this machine.
Install them, then run the command again:
  Debian/Ubuntu:  sudo apt-get install postgresql
  Fedora/RHEL:    sudo dnf install postgresql-server
  macOS:          brew install postgresql@16
Or point the project at an existing server:  export DATABASE_URL=postgres://crm_app@host:5432/crm
MSG
  exit 1
fi

# PostgreSQL refuses to run as root; as root we run the cluster as the unprivileged
# 'postgres' (or 'nobody') account, which owns only .pgdata/.
as_owner() {
  if [ "$(id -u)" = "0" ]; then
    local account=postgres
    id "$account" >/dev/null 2>&1 || account=nobody
    runuser -u "$account" -- "$@"
  else
    "$@"
  fi
}

prepare_dirs() {
  mkdir -p "$data" "$sock"
  chmod 700 "$data"
  if [ "$(id -u)" = "0" ]; then
    local account=postgres
    id "$account" >/dev/null 2>&1 || account=nobody
    chown -R "$account" "$root/.pgdata"
  fi
}

running() { as_owner "$pg_ctl_bin" -D "$data" status >/dev/null 2>&1; }

# The buffer pool sized as on a production server: a quarter of the memory, 128 MB to 4 GB
# (CRM_PG_SHARED_BUFFERS overrides). PostgreSQL's default of 128 MB is a fortieth of the
# million-customer benchmarks' data. Memory is only taken as pages are used.
if [ -n "${CRM_PG_SHARED_BUFFERS:-}" ]; then
  shared_buffers="$CRM_PG_SHARED_BUFFERS"
else
  mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || true)"
  mb=$(( ${mem_kb:-0} / 4096 ))
  [ "$mb" -lt 128 ] && mb=128
  [ "$mb" -gt 4096 ] && mb=4096
  shared_buffers="${mb}MB"
fi

case "${1:-}" in
  start)
    if [ ! -f "$data/PG_VERSION" ]; then
      prepare_dirs
      echo "Creating a project-local PostgreSQL cluster in .pgdata/ (port $port)…"
      as_owner "$initdb_bin" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if running && { [ "$(sed -n 4p "$data/postmaster.pid" 2>/dev/null)" != "$port" ] \
        || ! grep -q "shared_buffers=$shared_buffers" "$data/postmaster.opts" 2>/dev/null; }; then
      echo "Restarting the project-local PostgreSQL on port $port (shared_buffers $shared_buffers)…"
      as_owner "$pg_ctl_bin" -D "$data" -m fast -w stop >/dev/null
    fi
    if ! running; then
      prepare_dirs
      if ! as_owner "$pg_ctl_bin" -D "$data" -l "$log" -w -t 60 \
        -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=$shared_buffers" start >/dev/null; then
        echo "PostgreSQL did not start on port $port; the end of .pgdata/postgres.log says:" >&2
        tail -n 5 "$log" >&2
        echo "If the port is taken, choose another: make … PGPORT=54400" >&2
        exit 1
      fi
      echo "PostgreSQL is running on 127.0.0.1:$port (data in .pgdata/, log in .pgdata/postgres.log)."
    fi
    ;;
  stop)
    if [ -f "$data/PG_VERSION" ] && running; then
      as_owner "$pg_ctl_bin" -D "$data" -m fast -w stop >/dev/null && echo "Project-local PostgreSQL stopped."
    fi
    ;;
  status)
    if [ -f "$data/PG_VERSION" ] && running; then echo "running on port $port"; else echo "not running"; exit 3; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
