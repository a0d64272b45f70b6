#!/usr/bin/env bash
# Installs what the web service and its browser tests need beyond Python: Debian's Chromium (for
# Playwright), wrk (the HTTP load tool benchmarks/bench_web.py drives), Node.js and npm, and the pinned front-end packages (GOV.UK Frontend, axe-core) from
# package-lock.json into node_modules/, which the app serves from directly. Safe to rerun: each
# step is skipped when it is already done. Called by `make` after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=0
apt_install() {
  # Installs Debian packages, refreshing the package lists only when they do not know a package.
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "Candour's web tests need: $*; install them (apt-get install $*) and rerun." >&2
      exit 2
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  local package
  for package in "$@"; do
    if [ "$apt_updated" -eq 0 ] &&
       ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      echo "Refreshing the package lists ..."
      $sudo apt-get update -qq
      apt_updated=1
    fi
  done
  echo "Installing $* from Debian ..."
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi

# npm ci replaces node_modules wholesale, so run it only when the lock file has changed since the
# last install (its hash is kept inside node_modules, which git ignores).
stamp=node_modules/.candour-lock-sha1
want=$(sha1sum package-lock.json | cut -c1-40)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] ||
   [ ! -f node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.css ] ||
   [ ! -f node_modules/axe-core/axe.min.js ]; then
  echo "Installing GOV.UK Frontend and axe-core (npm ci) ..."
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
