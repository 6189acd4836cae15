#!/bin/sh
# PostgreSQL from Debian's packages, configured by the environment variables the official postgres
# image reads: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB. The first start creates the cluster
# in $PGDATA (a volume); later starts reuse it. Extra arguments go to the server (-c name=value).
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=md5 \
    -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  rm -f "$pwfile"
  # initdb's host lines cover loopback only; the other containers come over the compose network.
  printf 'host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\n' >>"$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\ntimezone = 'UTC'\n" >>"$PGDATA/postgresql.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres-entrypoint: cluster created in $PGDATA, database $POSTGRES_DB"
fi
exec postgres -D "$PGDATA" "$@"
