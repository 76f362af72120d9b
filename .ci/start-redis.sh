#!/usr/bin/env bash
# Redis for the distributed-crawl tests (tests/test_distributed.py): Debian's redis-server on
# 127.0.0.1:6379, daemonized, no persistence. Idempotent: does nothing if Redis already answers.
set -euo pipefail

HOST=127.0.0.1
PORT="${PTM_TEST_REDIS_PORT:-6379}"

ping() { redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null | grep -q PONG; }

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
fi

if ping; then
  echo "redis: already answering on $HOST:$PORT"
  exit 0
fi

redis-server --bind "$HOST" --port "$PORT" --daemonize yes --save "" --appendonly no \
  --protected-mode yes --dir /tmp --logfile /tmp/ptmscrape-redis.log

for _ in $(seq 1 50); do
  if ping; then
    echo "redis: answering on $HOST:$PORT"
    exit 0
  fi
  sleep 0.2
done
echo "redis: redis-server did not answer PING on $HOST:$PORT within 10 s (see /tmp/ptmscrape-redis.log)" >&2
exit 1
