#!/usr/bin/env bash
# Create the two database roles and the database, idempotently.
#   owner role (DATABASE_OWNER_URL's user): owns the schema, runs migrations, BYPASSRLS for
#                                           platform maintenance only;
#   app role   (DATABASE_URL's user):       owns nothing, NOBYPASSRLS — row-level security applies.
# Usage: scripts/db_bootstrap.sh SUPERUSER_URL APP_URL OWNER_URL
set -euo pipefail
super_url="$1"; app_url="$2"; owner_url="$3"

py() { "${PYTHON:-python3}" -c "$1" "$2"; }
parse='import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.path.lstrip("/"), p.username or "", u.unquote(p.password or ""))'
read -r db app_user app_pw <<<"$(py "$parse" "$app_url")"
read -r _db owner_user owner_pw <<<"$(py "$parse" "$owner_url")"

psql_super() { psql "$super_url" -v ON_ERROR_STOP=1 -qtA "$@"; }

role_sql() {  # name password attributes
  local pw_clause=""
  [ -n "$2" ] && pw_clause="PASSWORD '$2'"
  echo "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$1') THEN CREATE ROLE \"$1\" LOGIN $pw_clause $3;
    ELSE ALTER ROLE \"$1\" LOGIN $pw_clause $3; END IF; END \$\$;"
}

psql_super -c "$(role_sql "$owner_user" "$owner_pw" "NOSUPERUSER CREATEDB BYPASSRLS")"
psql_super -c "$(role_sql "$app_user" "$app_pw" "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")"
if [ "$(psql_super -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
  psql_super -c "CREATE DATABASE \"$db\" OWNER \"$owner_user\" ENCODING 'UTF8' TEMPLATE template0"
fi
db_url="$(py 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(u.urlunparse(p._replace(path="/'"$db"'")))' "$super_url")"
psql "$db_url" -v ON_ERROR_STOP=1 -qtA \
  -c "ALTER SCHEMA public OWNER TO \"$owner_user\"" \
  -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC" \
  -c "GRANT USAGE ON SCHEMA public TO \"$app_user\""
echo "Database roles ready: $owner_user (owner, migrations) and $app_user (application, under RLS)."
