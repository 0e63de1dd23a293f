#!/usr/bin/env bash
# Instructions the server executes per single event (callgrind counts instructions, not
# seconds, so two builds compare within a fraction of a percent even on a noisy machine,
# where the throughput of one event per request varies by 2x between runs).
# Usage: scripts/bench-instructions.sh [-n EVENTS] BINARY...
# Per binary: the server under callgrind on a fresh SQLite file, one keep-alive client
# posting EVENTS single events (default 2000) one at a time, then SIGTERM; then the same
# server idle for as long, to take off what start, shutdown and timers cost. One JSON line
# per binary: instructions per event, and the two totals.
set -euo pipefail
events=2000
if [ "${1:-}" = "-n" ]; then events=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n EVENTS] BINARY..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

# Runs BINARY under callgrind, posts N events (or idles for SECONDS when N is 0), stops
# it and prints "<instructions> <seconds>".
run() { # binary n seconds
  local bin=$1 n=$2 idle=$3 work port db key server out started
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  db="sqlite://$work/b.db"
  key=$("$bin" project create bench --database-url "$db" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_key"])')
  out="$work/callgrind.out"
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  started=$(date +%s.%N)
  if [ "$n" -gt 0 ]; then
    python3 - "$port" "$key" "$n" <<'EOF'
import http.client, json, sys
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    body = json.dumps({"message": f"bench request {i} timeout after {i % 7}s", "level": "error",
                       "tags": {"client": str(i % 32)}})
    c.request("POST", "/api/v1/events", body, {"Authorization": f"Bearer {key}",
                                                 "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
EOF
  else
    sleep "$idle"
  fi
  local took
  took=$(python3 -c "import time; print(time.time() - $started)")
  kill -TERM "$server"; wait "$server" 2>/dev/null || true
  echo "$(awk '/^summary:|^totals:/ {print $2; exit}' "$out") $took"
  rm -rf "$work"
}

for bin in "$@"; do
  read -r busy secs < <(run "$bin" "$events" 0)
  read -r idle _ < <(run "$bin" 0 "$secs")
  python3 -c "
import json
print(json.dumps({'binary': '$bin', 'events': $events, 'seconds_under_valgrind': round($secs, 1),
                  'instructions_per_event': round(($busy - $idle) / $events),
                  'instructions_busy': $busy, 'instructions_idle': $idle}))"
done
