#!/bin/sh
# The postgres image runs this once, when it creates the database
# (/docker-entrypoint-initdb.d): deploy/roles.sql with compose's role names and
# passwords from .env.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="${MYMOVIEDB_OWNER_ROLE:-mymoviedb_owner}" -v owner_password="$MYMOVIEDB_OWNER_PASSWORD" \
    -v app="${MYMOVIEDB_APP_ROLE:-mymoviedb_app}" -v app_password="$MYMOVIEDB_APP_PASSWORD" \
    -v database="$POSTGRES_DB" -f /etc/mymoviedb/roles.sql
