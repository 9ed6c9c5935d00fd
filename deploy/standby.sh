#!/bin/sh
# A streaming standby of the `db` service (compose profile "replicas"): copied once
# with pg_basebackup -R (which writes primary_conninfo and standby.signal), then
# started as a hot standby. RECOVERY_MIN_APPLY_DELAY (e.g. 30s) makes it a delayed
# standby, as deploy/cluster.py's second one. Runs as the image's postgres user.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    export PGPASSWORD="$POSTGRES_PASSWORD"
    # The primary may still be starting, or refuse until its replication rule exists.
    until pg_basebackup -h db -U "$POSTGRES_USER" -D "$PGDATA" -R -X stream -c fast; do
        rm -rf "${PGDATA:?}"/*
        sleep 2
    done
    chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on \
    -c recovery_min_apply_delay="${RECOVERY_MIN_APPLY_DELAY:-0}"
