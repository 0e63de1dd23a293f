#!/usr/bin/env bash
# The server's memory under large envelopes (SPEC §2.2: up to 100 MiB after decompression,
# items other than events skipped as they stream in). A release server pinned to CPU 0;
# RSS_CLIENTS (8) curl clients on CPU 1 each POST, RSS_ROUNDS (4) times one after another,
# an envelope of one event item and an attachment of RSS_ATTACHMENT_MIB (50) MiB of random
# bytes (a screenshot does not compress), plain or with --gzip. The server's RSS is read
# from /proc/<pid>/status: VmRSS before and after, VmHWM (the kernel's peak) at the end.
# Prints one JSON line.
# Usage: scripts/bench-envelope-rss.sh [--gzip]
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${RSS_CLIENTS:-8}
ROUNDS=${RSS_ROUNDS:-4}
MIB=${RSS_ATTACHMENT_MIB:-50}
GZIP=0
[ "${1:-}" = "--gzip" ] && GZIP=1
cargo build --release --bin mesher -q
bin=${CARGO_TARGET_DIR:-target}/release/mesher
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db="sqlite://$work/rss.db"
created=$("$bin" project create rss --database-url "$db" --listen "127.0.0.1:$port")
field() { echo "$created" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
key=$(field ingest_key)
project=$(field id)

# The envelope, written once: header, event item, attachment item.
envelope=$work/envelope
event='{"message":"a crash with a screenshot","level":"error","platform":"python"}'
{
  printf '{"sent_at":"2026-12-01T10:00:00Z"}\n'
  printf '{"type":"event","length":%d}\n%s\n' "${#event}" "$event"
  printf '{"type":"attachment","length":%d,"filename":"screenshot.png"}\n' $((MIB << 20))
  head -c $((MIB << 20)) /dev/urandom
  printf '\n'
} >"$envelope"
encoding=()
if [ "$GZIP" = 1 ]; then
  gzip -1 -c "$envelope" >"$envelope.gz"
  mv "$envelope.gz" "$envelope"
  encoding=(-H "Content-Encoding: gzip")
fi

# Started without a wrapper function so that $! is the server itself (taskset execs it).
TASKSET=$(command -v taskset >/dev/null && echo "taskset -c 0" || true)
RUST_LOG=warn $TASKSET "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --rate-limit 0 >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$server/status"; }
idle=$(rss VmRSS)

# Each client streams the file (-T, not read into curl's memory), to the path without the
# trailing slash (to one with it, -T would append the file's name).
client() {
  for _ in $(seq "$ROUNDS"); do
    taskset -c 1 curl -s -o /dev/null -w '%{http_code}\n' -X POST -T "$envelope" \
      -H 'Expect:' -H 'Content-Type: application/x-sentry-envelope' "${encoding[@]}" \
      -H "X-Sentry-Auth: Sentry sentry_key=$key, sentry_version=7" \
      "http://127.0.0.1:$port/api/$project/envelope"
  done
}
start=$(date +%s.%N)
for c in $(seq "$CLIENTS"); do client >"$work/codes.$c" & done
wait $(jobs -p | grep -vx "$server")
end=$(date +%s.%N)
peak=$(rss VmHWM)
after=$(rss VmRSS)
ok=$(cat "$work"/codes.* | grep -cx 200 || true)
envelopes=$((CLIENTS * ROUNDS))
stored=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 ~ /^mesher_events_ingested_total/ { s += $2 } END { print s + 0 }')
python3 - "$peak" "$idle" "$after" "$envelopes" "$ok" "$start" "$end" "$(stat -c %s "$envelope")" "$GZIP" "$stored" <<'EOF'
import json, sys
peak, idle, after, n, ok = map(int, sys.argv[1:6])
start, end = float(sys.argv[6]), float(sys.argv[7])
size, gz, stored = int(sys.argv[8]), sys.argv[9] == "1", float(sys.argv[10])
secs = end - start
print(json.dumps({
    "peak_rss_kib": peak, "idle_rss_kib": idle, "after_rss_kib": after,
    "envelopes": n, "answered_200": ok, "events_ingested": int(stored),
    "body_mib": round(size / 2**20, 1), "gzip": gz,
    "seconds": round(secs, 2), "body_mib_per_s": round(n * size / 2**20 / secs, 1),
}))
EOF
