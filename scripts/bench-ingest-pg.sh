#!/usr/bin/env bash
# Durable ingest on PostgreSQL (issue 14, target 4): a throwaway local cluster (fsync on),
# a release server on CPU 0, `examples/bench ingest` on CPU 1 with 32 keep-alive clients,
# single events then bulks of 100 (BENCH_SECONDS each, default 5). One JSON line each.
# Usage: scripts/bench-ingest-pg.sh [BINARY]   (default target/release/mesher)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/mesher}
cargo build --release --example bench -q
[ "$bin" = target/release/mesher ] && cargo build --release --bin mesher -q
bench=target/release/examples/bench
secs=${BENCH_SECONDS:-5}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(free_port)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$work"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -A trust -U mesher -E UTF8 >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -w -l "$work/log" -o "-p $pgport -k $work -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -w -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"${as_pg[@]}" "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U mesher mesher
db="postgres://mesher@127.0.0.1:$pgport/mesher"
created=$("$bin" project create bench --database-url "$db")
key=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_key"])')
port=$(free_port)
RUST_LOG=warn taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
for batch in 1 100; do
  taskset -c 1 "$bench" ingest --url "http://127.0.0.1:$port" --key "$key" --clients 32 --batch "$batch" --seconds "$secs" |
    sed 's|^{|{"database":"postgres",|'
done
