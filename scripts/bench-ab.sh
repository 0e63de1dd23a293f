#!/usr/bin/env bash
# Side-by-side fan-out runs of several server binaries on one machine, alternated, so that a
# change is measured against its parent under the same conditions (docs/BENCHMARKS.md, "Fan-out in bulks").
# Usage: scripts/bench-ab.sh [-n RUNS] BINARY...   e.g. scripts/bench-ab.sh /tmp/old target/release/mesher
# Each run: 1,000 subscribers saturated (bulk 100), then paced at 200 events/s (bulk 10);
# one JSON line per run with the binary added (BENCH_SLOW=1: also the slow-consumer scenario).
# Server on CPU 0, load generator on CPU 1.
set -euo pipefail
runs=2
if [ "${1:-}" = "-n" ]; then runs=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n RUNS] BINARY..." >&2; exit 2; }
cd "$(dirname "$0")/.."
ulimit -n 20000 2>/dev/null || true
cargo build --release --example bench -q
bench=target/release/examples/bench
SUBS=${BENCH_SUBSCRIBERS:-1000}; EVENTS=${BENCH_EVENTS:-20000}

one() { # binary
  local bin=$1 work port db created key token server
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  db="sqlite://$work/b.db"
  created=$("$bin" project create bench --database-url "$db")
  key=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_key"])')
  token=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  RUST_LOG=warn taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local common=(--url "http://127.0.0.1:$port" --key "$key" --token "$token" --server-pid "$server" --subscribers "$SUBS")
  taskset -c 1 "$bench" fanout "${common[@]}" --events "$EVENTS" --batch 100 | sed "s|^{|{\"binary\":\"$bin\",\"mode\":\"saturated\",|"
  taskset -c 1 "$bench" fanout "${common[@]}" --events "$((EVENTS / 10))" --batch 10 --rate 200 | sed "s|^{|{\"binary\":\"$bin\",\"mode\":\"paced\",|"
  if [ -n "${BENCH_SLOW:-}" ]; then
    taskset -c 1 "$bench" slow-consumer "${common[@]}" --events "$((EVENTS / 10))" --batch 10 --rate 200 | sed "s|^{|{\"binary\":\"$bin\",\"mode\":\"slow-consumer\",|"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$work"
}

for _ in $(seq "$runs"); do
  for bin in "$@"; do one "$bin"; done
done
