#!/usr/bin/env bash
# Create the two database roles and the database, idempotently.
#   owner role (DATABASE_OWNER_URL's user): owns the schema, runs migrations, BYPASSRLS for
#                                           platform maintenance only;
#   app role   (DATABASE_URL's user):       owns nothing, NOBYPASSRLS — row-level security applies.
# Usage: scripts/db_bootstrap.sh SUPERUSER_URL APP_URL OWNER_URL
set -euo pipefail
super_url="$1"; app_url="$2"; owner_url="$3"
PYTHON="${PYTHON:-python3}"

field() {  # url part -> value (password percent-decoded)
  "$PYTHON" -c 'import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print({"db": p.path.lstrip("/"), "user": p.username or "", "password": u.unquote(p.password or "")}[sys.argv[2]])' "$1" "$2"
}
db="$(field "$app_url" db)"
app_user="$(field "$app_url" user)"; app_pw="$(field "$app_url" password)"
owner_user="$(field "$owner_url" user)"; owner_pw="$(field "$owner_url" password)"

# Values travel as psql variables and are quoted by psql (:'var', :"var"), never pasted into SQL.
psql_super() { psql "$super_url" -v ON_ERROR_STOP=1 -qtA "$@"; }

ensure_role() {  # name password attributes
  psql_super -v name="$1" -v pw="$2" -v attrs="$3" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I LOGIN %s', :'name', :'attrs') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'name', :'pw') WHERE :'pw' <> '' \gexec
SQL
}

ensure_role "$owner_user" "$owner_pw" "NOSUPERUSER CREATEDB BYPASSRLS"
ensure_role "$app_user" "$app_pw" "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
psql_super -v db="$db" -v owner="$owner_user" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
db_url="$("$PYTHON" -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(u.urlunparse(p._replace(path="/" + sys.argv[2])))' "$super_url" "$db")"
psql "$db_url" -v ON_ERROR_STOP=1 -qtA -v owner="$owner_user" -v app="$app_user" <<'SQL'
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
SQL
echo "Database roles ready: $owner_user (owner, migrations) and $app_user (application, under RLS)."
