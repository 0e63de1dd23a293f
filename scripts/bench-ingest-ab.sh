#!/usr/bin/env bash
# Durable ingest of several server binaries side by side, alternated (docs/BENCHMARKS.md).
# Usage: scripts/bench-ingest-ab.sh [-n RUNS] BINARY...
# Each run, per binary: a fresh server on a new SQLite file (CPU 0), then `examples/bench
# ingest` on CPU 1 with 32 keep-alive clients, single events and bulks of 100
# (BENCH_SECONDS each, default 5), then Sentry envelopes of a 15 KB SDK event. One JSON line per measurement, with the binary added.
set -euo pipefail
runs=2
if [ "${1:-}" = "-n" ]; then runs=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n RUNS] BINARY..." >&2; exit 2; }
cd "$(dirname "$0")/.."
cargo build --release --example bench -q
bench=target/release/examples/bench
secs=${BENCH_SECONDS:-5}

one() { # binary
  local bin=$1 work port db created key project server
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  db="sqlite://$work/b.db"
  created=$("$bin" project create bench --database-url "$db")
  key=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_key"])')
  project=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  RUST_LOG=warn taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  for batch in 1 100; do
    taskset -c 1 "$bench" ingest --url "http://127.0.0.1:$port" --key "$key" --clients 32 --batch "$batch" --seconds "$secs" |
      sed "s|^{|{\"binary\":\"$bin\",|"
  done
  taskset -c 1 "$bench" envelope --url "http://127.0.0.1:$port" --key "$key" --project "$project" --clients 32 --seconds "$secs" |
    sed "s|^{|{\"binary\":\"$bin\",|"
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$work"
}

for _ in $(seq "$runs"); do
  for bin in "$@"; do one "$bin"; done
done
