#!/usr/bin/env bash
# Print a Redis URL for tests: the one given, the machine's own on 6379, or a project-local
# redis-server started on its own port with its data in .redisdata/ (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${CRM_REDIS_PORT:-63799}"
ping() { python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG"); s.close()
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}
case "${1:-url}" in
  url)
    if ping 127.0.0.1 6379; then echo "redis://127.0.0.1:6379"; exit 0; fi
    if ! ping 127.0.0.1 "$port"; then
      if ! command -v redis-server >/dev/null; then
        echo "No Redis found. Install it (apt-get install redis-server) or set REDIS_URL." >&2; exit 1
      fi
      mkdir -p "$root/.redisdata"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$root/.redisdata" --logfile "$root/.redisdata/redis.log" --pidfile "$root/.redisdata/redis.pid" >/dev/null
      for _ in $(seq 50); do ping 127.0.0.1 "$port" && break; sleep 0.1; done
    fi
    echo "redis://127.0.0.1:$port"
    ;;
  stop)
    [ -f "$root/.redisdata/redis.pid" ] && kill "$(cat "$root/.redisdata/redis.pid")" 2>/dev/null || true
    ;;
esac
