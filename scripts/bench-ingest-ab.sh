#!/usr/bin/env bash
# Durable ingest of several server binaries side by side, alternated (docs/BENCHMARKS.md, "Durable ingest on SQLite").
# Usage: scripts/bench-ingest-ab.sh [-n RUNS] BINARY...
# Each run, per binary: a fresh server on a new SQLite file (CPU 0), then `examples/bench
# ingest` on CPU 1 with 32 keep-alive clients, single events and bulks of 100
# (BENCH_SECONDS each, default 5), then Sentry envelopes of a 15 KB SDK event, then a flood
# of 401s beside one real client (`bench flood`). One JSON line
# per measurement, with the binary, the server's CPU per event and the mean commit added (the
# CPU per event varies less than the throughput on a shared machine, but still drifts).
# BENCH_DB_DIR=/dev/shm puts the SQLite files on tmpfs: the same write path without the
# disk's sync (a ceiling to compare with, not a supported deployment).
set -euo pipefail
runs=2
if [ "${1:-}" = "-n" ]; then runs=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n RUNS] BINARY..." >&2; exit 2; }
cd "$(dirname "$0")/.."
cargo build --release --example bench -q
bench=target/release/examples/bench
secs=${BENCH_SECONDS:-5}

# The server's CPU time (utime + stime, in clock ticks) and its commits' event count and
# number, from /proc and /metrics.
server_counters() {
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$server/stat")
  curl -s "http://127.0.0.1:$port/metrics" | python3 -c "
import sys
d = {'sum': 0.0, 'count': 0.0}
for line in sys.stdin:
    for k in d:
        if line.startswith('mesher_commit_batch_events_' + k):
            d[k] += float(line.split()[-1])
print($ticks, d['sum'], d['count'])"
}

# Runs one `bench` scenario on CPU 1 and prints its JSON line with the binary, the server's
# CPU per stored event (µs), how busy its core was (CPU time ÷ the run's time: below ~0.9
# it waited rather than worked) and the mean events per commit added.
measured() { # binary scenario args...
  local bin=$1 before after out
  shift
  before=$(server_counters)
  out=$(taskset -c 1 "$bench" "$@")
  after=$(server_counters)
  echo "$out" | python3 -c "
import json, os, sys
d = json.loads(sys.stdin.read())
t0, s0, c0 = map(float, '$before'.split()); t1, s1, c1 = map(float, '$after'.split())
hz = os.sysconf('SC_CLK_TCK')
d = {'binary': '$bin', **d,
     'server_cpu_us_per_event': round((t1 - t0) / hz * 1e6 / max(1, d['events']), 1),
     'server_busy': round((t1 - t0) / hz / max(1e-9, d['seconds']), 2),
     'commit_batch_mean': round((s1 - s0) / max(1, c1 - c0), 1)}
print(json.dumps(d))"
}

one() { # binary
  local bin=$1 work port db created key project server
  work=$(mktemp -d -p "${BENCH_DB_DIR:-${TMPDIR:-/tmp}}")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  db="sqlite://$work/b.db"
  created=$("$bin" project create bench --database-url "$db")
  key=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_key"])')
  project=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  RUST_LOG=warn taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  for batch in 1 100; do
    measured "$bin" ingest --url "http://127.0.0.1:$port" --key "$key" --clients 32 --batch "$batch" --seconds "$secs"
  done
  measured "$bin" envelope --url "http://127.0.0.1:$port" --key "$key" --project "$project" --clients 32 --seconds "$secs"
  # A flood of 401s (64 clients, 1 MiB bodies, unknown keys) beside one real client at 100/s.
  taskset -c 1 "$bench" flood --url "http://127.0.0.1:$port" --key "$key" --server-pid "$server" --clients 64 --seconds "$secs" |
    sed "s|^{|{\"binary\":\"$bin\",|"
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$work"
}

for _ in $(seq "$runs"); do
  for bin in "$@"; do one "$bin"; done
done
