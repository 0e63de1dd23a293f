#!/usr/bin/env bash
# The README's test command. Installs what the tests drive besides Rust crates — the real
# Python Sentry SDK (in a virtualenv under target/), the real @sentry/node (npm, in
# tests/sentry) and playwright-core, which drives Debian's chromium for the dashboard test
# (npm, in tests/dashboard) — then runs `cargo test` with any arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/test-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
export MESHER_TEST_PYTHON="$PWD/$venv/bin/python"
if [ ! -d tests/sentry/node_modules/@sentry/node ]; then
  (cd tests/sentry && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/dashboard/node_modules/playwright-core ]; then
  (cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi
exec cargo test "$@"
