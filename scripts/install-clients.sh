#!/usr/bin/env bash
# Install what tests/cluster/test_clients.py drives against a ddb cluster, and nothing else:
#   tests/clients/node_modules  the AWS SDK for JavaScript v3, dynamodb-admin and playwright-core, exactly as
#                               pinned in tests/clients/package-lock.json (npm ci; git-ignored)
#   /usr/bin/chromium           Debian's chromium (+ chromium-driver) for playwright-core to drive headless,
#                               installed with apt when missing and we are root; playwright never downloads
#                               a browser here
# Without them those tests skip. Running it again is cheap: node_modules installed after the last change of the lock
# file is kept (DDB_CLIENTS_REINSTALL=1 installs again).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=tests/clients

say() { printf '\033[1m%s\033[0m\n' "$*"; }

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js (>= 18, with npm) to run the JavaScript client tests" >&2
  exit 1
fi
# npm writes node_modules/.package-lock.json at the end of an install: newer than the lock file means
# the lock file has not changed since.
if [ -z "${DDB_CLIENTS_REINSTALL:-}" ] && [ "$CLIENTS/node_modules/.package-lock.json" -nt "$CLIENTS/package-lock.json" ]; then
  say "node clients: installed ($CLIENTS/node_modules is newer than package-lock.json)"
else
  say "node clients: npm ci in $CLIENTS"
  # No browser download: playwright-core never fetches one, and the env var covers older packages too.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$CLIENTS" --no-audit --no-fund --loglevel=error
fi

CHROMIUM="${DDB_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  say "chromium: $("$CHROMIUM" --version 2>/dev/null | head -1)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "chromium: installing chromium and chromium-driver with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }
else
  echo "chromium is missing: install it (Debian: apt-get install chromium chromium-driver) for the GUI test" >&2
fi
say "clients ready: pytest tests/cluster/test_clients.py"
