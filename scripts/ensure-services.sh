#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis that the tests use are up on 127.0.0.1, starting them with
# Debian's own commands when they are down, and fail loudly when they cannot be reached.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

postgres_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
# The MQTT bridge's tests publish to the real Mosquitto on 127.0.0.1:1883 (docs/mqtt.md).
MQTT_PORT=${MQTT_PORT:-1883}
mosquitto_up() { (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null; }

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

if ! mosquitto_up; then
  echo "Mosquitto is down on 127.0.0.1:$MQTT_PORT; starting it" >&2
  if ! command -v mosquitto >/dev/null; then
    apt-get update -qq && apt-get install -y -qq mosquitto
  fi
  mkdir -p /run/mosquitto /var/lib/mosquitto /var/log/mosquitto
  chown mosquitto: /run/mosquitto /var/lib/mosquitto /var/log/mosquitto 2>/dev/null || true
  if [ -f /etc/mosquitto/mosquitto.conf ]; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
  else
    mosquitto -d -p "$MQTT_PORT"
  fi
fi

for _ in $(seq 1 30); do
  if postgres_up && redis_up && mosquitto_up; then
    break
  fi
  sleep 1
done
postgres_up || { echo "PostgreSQL is unreachable on $PGHOST:$PGPORT" >&2; exit 1; }
redis_up || { echo "Redis is unreachable on 127.0.0.1:$REDIS_PORT" >&2; exit 1; }
mosquitto_up || { echo "Mosquitto is unreachable on 127.0.0.1:$MQTT_PORT" >&2; exit 1; }

if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'wardwise'" | grep -q 1; then
  createdb -h "$PGHOST" -p "$PGPORT" -U postgres wardwise
fi
echo "PostgreSQL, Redis and Mosquitto are up" >&2
