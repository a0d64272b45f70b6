#!/usr/bin/env bash
# Installs the Debian packages Candour needs beyond Python and the web tools: a Java runtime
# for PySpark (`--engine spark`). Skipped when already present. Called by `make setup`.
set -euo pipefail

if java -version >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "Candour's Spark engine needs Java 17+: apt-get install openjdk-17-jre-headless" >&2
    exit 2
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "Installing a Java runtime for Spark ..."
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
