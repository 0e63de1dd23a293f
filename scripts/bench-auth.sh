#!/usr/bin/env bash
# What signing in costs (docs/BENCHMARKS.md, "Signing in"; issue 25).
# Usage: scripts/bench-auth.sh [BINARY]   (default target/release/mesher)
# A fresh server on a new SQLite file (CPU 0) with one project, one event (so the issue
# list has a row), a member user signed in (the session cookie) and an API token of theirs.
# Then `examples/auth_cost` on CPU 1, one keep-alive client: AUTH_REQUESTS (default 2,000)
# sequential `GET /api/v1/projects/<id>/issues` per credential — the project token, the
# session cookie, the API token — after AUTH_WARMUP (200) each, alternated in AUTH_ROUNDS
# (4) rounds; one JSON line per credential (latency, the server's CPU per request, the
# differences to the project token). Then AUTH_SIGN_INS (20) failed sign-ins, one Argon2id
# verification each: one JSON line.
# AUTH_COST_BIN=PATH uses that client instead of building examples/auth_cost.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/mesher}
client=${AUTH_COST_BIN:-}
if [ -z "$client" ]; then
  cargo build --release --example auth_cost -q
  client=target/release/examples/auth_cost
fi
email=member@auth-bench.example
password=correct-horse-battery-staple

work=$(mktemp -d -p "${BENCH_DB_DIR:-${TMPDIR:-/tmp}}")
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
db="sqlite://$work/auth.db"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

created=$("$bin" project create auth-bench --database-url "$db" --listen "127.0.0.1:$port" 2>/dev/null)
project=$(echo "$created" | json_field id)
key=$(echo "$created" | json_field ingest_key)
token=$(echo "$created" | json_field token)
echo "$password" | "$bin" user create "$email" --password-stdin --database-url "$db" >/dev/null
"$bin" member add "$project" "$email" --database-url "$db" >/dev/null

RUST_LOG=warn taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null &
server=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

curl -sf -o /dev/null -X POST "$base/api/v1/events" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"message":"auth bench: one issue","level":"error"}'
cookie=$(curl -sf -o /dev/null -D - -X POST "$base/api/v1/session" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}" |
  sed -n 's/^[Ss]et-[Cc]ookie: mesher_session=\([0-9a-f]*\);.*/\1/p')
[ -n "$cookie" ] || { echo "sign-in failed: no session cookie" >&2; exit 1; }
api_token=$(curl -sf -X POST "$base/api/v1/me/tokens" -H "Cookie: mesher_session=$cookie" \
  -H "Origin: $base" -H 'Content-Type: application/json' -d '{"name":"auth bench"}' | json_field token)

taskset -c 1 "$client" --url "$base" --project "$project" --project-token "$token" \
  --cookie "$cookie" --api-token "$api_token" --member "$email" --server-pid "$server" \
  --clk-tck "$(getconf CLK_TCK)" --requests "${AUTH_REQUESTS:-2000}" --warmup "${AUTH_WARMUP:-200}" \
  --rounds "${AUTH_ROUNDS:-4}" --sign-ins "${AUTH_SIGN_INS:-20}" |
  sed "s|^{|{\"binary\":\"$bin\",|"
