#!/bin/sh
# Run once by the postgres image when it creates the primary's data directory
# (/docker-entrypoint-initdb.d/): lets the standby (deploy/standby.sh) stream,
# with the same password rule as ordinary connections.
set -eu
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
