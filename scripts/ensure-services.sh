#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis that the tests use are up on 127.0.0.1, starting them with
# Debian's own commands when they are down, and fail loudly when they cannot be reached.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

postgres_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

if ! postgres_up; then
  echo "PostgreSQL is down on $PGHOST:$PGPORT; starting it" >&2
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi
if ! redis_up; then
  echo "Redis is down on 127.0.0.1:$REDIS_PORT; starting it" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

for _ in $(seq 1 30); do
  if postgres_up && redis_up; then
    break
  fi
  sleep 1
done
postgres_up || { echo "PostgreSQL is unreachable on $PGHOST:$PGPORT" >&2; exit 1; }
redis_up || { echo "Redis is unreachable on 127.0.0.1:$REDIS_PORT" >&2; exit 1; }

if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'wardwise'" | grep -q 1; then
  createdb -h "$PGHOST" -p "$PGPORT" -U postgres wardwise
fi
echo "PostgreSQL and Redis are up" >&2
