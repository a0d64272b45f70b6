#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the store tests.
# It installs the Debian package if it is missing, and starts the cluster if it is stopped.
set -euo pipefail

host=${CANDOUR_TEST_PGHOST:-127.0.0.1}
port=${CANDOUR_TEST_PGPORT:-5432}

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if command -v pg_isready >/dev/null 2>&1 && ready; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "Installing PostgreSQL ..."
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
conf=/etc/postgresql/$version/main
# Tests connect as postgres over TCP without a password, as on the developers' machines.
if ! grep -q "candour-test" "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust # candour-test\nhost all all ::1/128 trust # candour-test' "$conf/pg_hba.conf"
fi
echo "Starting PostgreSQL $version ..."
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do
  if ready; then
    psql -h "$host" -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" \
      | grep -q 1 || psql -h "$host" -p "$port" -U postgres -c "CREATE DATABASE test" >/dev/null
    exit 0
  fi
  sleep 1
done
echo "PostgreSQL did not start on $host:$port; see /var/log/postgresql/." >&2
exit 1
