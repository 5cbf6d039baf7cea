#!/usr/bin/env bash
# Makes sure the local servers the tests and `npm run start:cluster` use are running:
# PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, NATS with JetStream on 127.0.0.1:4222.
# A stopped server is started with this machine's own command; a server that is not installed at
# all is installed from Debian's packages (as root), or the script fails naming what is missing.
# It never stops or restarts a server that is already answering.
set -euo pipefail

say() { printf 'ensure-servers: %s\n' "$*" >&2; }

answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # name port
  for _ in $(seq 1 60); do
    if answers 127.0.0.1 "$2"; then return 0; fi
    sleep 0.5
  done
  say "$1 did not start answering on 127.0.0.1:$2 (see its log)"
  exit 1
}

apt_updated=no
install_package() { # package
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "$1 is not installed and cannot be installed here (needs root and apt-get): install the Debian package $1"
    exit 1
  fi
  if [ "$apt_updated" = no ]; then
    apt-get update -qq
    apt_updated=yes
  fi
  say "installing $1 from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

# PostgreSQL
if ! answers 127.0.0.1 5432; then
  if [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then install_package postgresql; fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 5432
fi

# Redis
if ! answers 127.0.0.1 6379; then
  command -v redis-server >/dev/null || install_package redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379
fi

# NATS with JetStream
if ! answers 127.0.0.1 4222; then
  [ -x /usr/sbin/nats-server ] || install_package nats-server
  say "starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for NATS 4222
fi
