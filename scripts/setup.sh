#!/usr/bin/env bash
# Creates .venv and installs Candour with its pinned dependencies. Called by `make`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "Candour needs Python 3.11 or newer; install it (e.g. apt-get install python3) and rerun." >&2
  exit 2
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "Installing python3-venv ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
echo "Installing Candour and its pinned dependencies into .venv ..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
