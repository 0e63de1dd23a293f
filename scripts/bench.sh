#!/usr/bin/env bash
# Runs the benchmarks: a release server pinned to CPU 0, the load generator on CPU 1.
# Usage: scripts/bench.sh [ingest] [--smoke]
#   ingest:  only durable ingest (single events, paced single events, bulks, envelopes,
#            and the Sentry mapping of the envelopes' event, in-process)
#   --smoke: a few seconds, small N, debug build, for CI
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
SECONDS_PER=${BENCH_SECONDS:-10}
PROFILE=--release
ONLY_INGEST=
SMOKE=
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1; SECONDS_PER=1; PROFILE= ;;
    ingest) ONLY_INGEST=1 ;;
    *) echo "usage: $0 [ingest] [--smoke]" >&2; exit 2 ;;
  esac
done
cargo build $PROFILE --bin mesher --example bench -q
dir=target/$([ -n "$PROFILE" ] && echo release || echo debug)
work=$(mktemp -d)
# BENCH_DB_DIR=/dev/shm keeps the database on tmpfs, to see the stream without the disk's fsync.
dbdir=${BENCH_DB_DIR:-$work}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db="sqlite://$dbdir/bench-$$.db"
created=$("$dir/mesher" project create bench --database-url "$db")
key=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_key"])')
token=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
project=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
SUBS=${BENCH_SUBSCRIBERS:-1000}; EVENTS=${BENCH_EVENTS:-20000}
CONNS=${BENCH_CONNECTIONS:-10000}
if [ -n "$SMOKE" ]; then SUBS=20; EVENTS=500; CONNS=50; fi
pin() { if command -v taskset >/dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
# Started without the pin function so that $! is the server itself (taskset execs it).
TASKSET=$(command -v taskset >/dev/null && echo "taskset -c 0" || true)
RUST_LOG=warn $TASKSET "$dir/mesher" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 ${MESHER_BENCH_SERVER_ARGS:-} >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work" "$dbdir"/bench-$$.db*' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
common=(--url "http://127.0.0.1:$port" --key "$key" --token "$token" --server-pid "$server")
if [ -z "$ONLY_INGEST" ]; then
# The headline: one event per POST (as SDKs send), 4 keep-alive publishers in a closed
# loop, then paced at 200 events/s; then the same in bulks of 100 and 10.
pin 1 "$dir/examples/bench" fanout "${common[@]}" --subscribers "$SUBS" --events "$((EVENTS / 4))" --batch 1 --publishers 4
pin 1 "$dir/examples/bench" fanout "${common[@]}" --subscribers "$SUBS" --events "$((EVENTS / 10))" --batch 1 --rate "${BENCH_RATE:-200}"
pin 1 "$dir/examples/bench" fanout "${common[@]}" --subscribers "$SUBS" --events "$EVENTS" --batch 100
pin 1 "$dir/examples/bench" fanout "${common[@]}" --subscribers "$SUBS" --events "$((EVENTS / 10))" --batch 10 --rate "${BENCH_RATE:-200}"
# The paced fan-out without and with a tenth of the subscribers stalled.
pin 1 "$dir/examples/bench" slow-consumer "${common[@]}" --subscribers "$SUBS" --events "$((EVENTS / 10))" --batch 10 --rate "${BENCH_RATE:-200}"
pin 1 "$dir/examples/bench" connections --url "http://127.0.0.1:$port" --token "$token" --connections "$CONNS" --server-pid "$server"
fi
# Durable ingest, 32 keep-alive clients: single events closed loop, then paced at
# BENCH_INGEST_RATE (default 10,000/s) for the latency at that load, then bulks of 100.
ingest=(--url "http://127.0.0.1:$port" --key "$key" --clients 32 --seconds "$SECONDS_PER")
pin 1 "$dir/examples/bench" ingest "${ingest[@]}" --batch 1
pin 1 "$dir/examples/bench" ingest "${ingest[@]}" --batch 1 --rate "${BENCH_INGEST_RATE:-10000}"
pin 1 "$dir/examples/bench" ingest "${ingest[@]}" --batch 100
# A flood of 401s: 64 clients posting 1 MiB bodies under unknown keys, while one client
# sends real events at 100/s; the server's CPU per refused request and that client's latency.
pin 1 "$dir/examples/bench" flood --url "http://127.0.0.1:$port" --key "$key" --server-pid "$server" --clients 64 --seconds "$SECONDS_PER"
# Sentry envelopes of a 15 KB Python SDK event (chain, locals, source context), 32 clients.
pin 1 "$dir/examples/bench" envelope --url "http://127.0.0.1:$port" --key "$key" --project "$project" --clients 32 --seconds "$SECONDS_PER"
# The same SDK event's mapping alone, in the generator's process (no server, no I/O).
pin 1 "$dir/examples/bench" parse --events "$([ -n "$SMOKE" ] && echo 200 || echo 5000)"
