#!/usr/bin/env bash
# The README's test command. Installs what the tests drive besides Rust crates — the real
# Python Sentry SDK (in a virtualenv under target/), an OpenID Connect provider (another), the real @sentry/node (npm, in
# tests/sentry), esbuild and @sentry/browser (npm, in tests/sourcemaps; sentry-cli is in the Python venv) and playwright-core, which drives Debian's chromium for the dashboard test
# (npm, in tests/dashboard) — then runs `cargo test` with any arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."

# The system packages the tests use: Debian's chromium (dashboard), PostgreSQL 15 and
# redis-server (many nodes), Python's venv and Node's npm (the real SDKs). As root with apt,
# what is missing is installed; otherwise the test run stops at once with the command.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: the tests need ${missing[*]}; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
venv=target/test-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
export MESHER_TEST_PYTHON="$PWD/$venv/bin/python"
oidc_venv=target/oidc-venv
[ -x "$oidc_venv/bin/python" ] || python3 -m venv "$oidc_venv"
"$oidc_venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements-oidc.txt
export MESHER_TEST_OIDC_PYTHON="$PWD/$oidc_venv/bin/python"
if [ ! -d tests/sentry/node_modules/@sentry/node ]; then
  (cd tests/sentry && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/sourcemaps/node_modules/esbuild ] || [ ! -d tests/sourcemaps/node_modules/@sentry/browser ]; then
  (cd tests/sourcemaps && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/dashboard/node_modules/playwright-core ]; then
  (cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi
node --test --test-reporter=spec tests/js/*.test.js # the dashboard's pure modules (assets/js)
exec cargo test "$@"
