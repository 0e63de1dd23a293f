#!/usr/bin/env bash
# Mesher beside nats-server, same load generator, same run (docs/BENCHMARKS.md, "Fan-out: one event per POST").
#
# Usage: scripts/bench-peers.sh [-n RUNS] [MESHER_BINARY...]
#   default binary: target/release/mesher (built first). Several binaries are run in turn,
#   so a change can be compared with its parent inside one run.
# Needs the fanout generator (FANOUT_DIR, default ../shared/fanout: its run-peers.sh pins
# the server to CPU 0 and the generator to CPU 1) and nats-server (apt-get install
# nats-server). Scenarios, each for every server, alternated:
#   closed   1,000 subscribers, 512 B, closed loop, window 32 (Mesher: 4 keep-alive
#            publishers, one event per POST /api/v1/events)
#   r200     the same at a fixed 200 events/s
#   r20      the same at 20 events/s (a lone event must not wait for company)
#   s200r300 200 subscribers at 300 events/s
# Prints one JSON line per run, then a summary with the medians and the ratios to NATS.
# Also records the disk's fsync latency (every stream message waits for its commit).
set -euo pipefail
runs=1
if [ "${1:-}" = "-n" ]; then runs=$2; shift 2; fi
cd "$(dirname "$0")/.."
fanout_dir=${FANOUT_DIR:-../shared/fanout}
[ -x "$fanout_dir/run-peers.sh" ] || { echo "no $fanout_dir/run-peers.sh (set FANOUT_DIR)" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 2; }
if [ $# -eq 0 ]; then
  cargo build --release -q
  set -- target/release/mesher
fi
secs=${BENCH_SECONDS:-10}
out=${BENCH_RESULTS:-$(mktemp /tmp/bench-peers.XXXXXX.jsonl)}
unset RESULTS # run-peers.sh appends its own lines there
: >"$out"

scenario() { # name -> fanout args
  case $1 in
    closed) echo "1000 512 $secs" ;;
    r200) echo "1000 512 $secs --rate 200" ;;
    r20) echo "1000 512 $secs --rate 20" ;;
    s200r300) echo "200 512 $secs --rate 300" ;;
  esac
}

one() { # scenario server [binary]
  local args label=nats
  read -r -a args <<<"$(scenario "$1")"
  [ "$2" = nats ] || label=$3
  if [ "$2" = nats ]; then
    "$fanout_dir/run-peers.sh" nats "${args[@]}" 2>/dev/null
  else
    MESHER_BIN="$3" "$fanout_dir/run-peers.sh" mesher "${args[@]}" 2>/dev/null
  fi | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
d["server"] = sys.argv[1]
d["scenario"] = sys.argv[2]
print(json.dumps(d))
l = d["latency_ms"]
line = "%-9s %-28s %10.0f/s  loss %d  p50 %6.1f  p99 %6.1f ms  server %5.1f%%  gen %5.1f%%" % (
    d["scenario"], d["server"], d["deliveries_per_s"], d["loss"], l["p50"], l["p99"],
    d["server_cpu_pct"], d["gen_cpu_pct"])
print(line, file=sys.stderr)' "$label" "$1" >>"$out"
}

for _ in $(seq "$runs"); do
  for s in closed r200 r20 s200r300; do
    one "$s" nats
    for bin in "$@"; do one "$s" mesher "$bin"; done
  done
done

# The disk under the default SQLite file: write + fsync of 4 KiB, 2,000 times.
python3 - "$out" <<'PY'
import json, os, statistics, sys, tempfile, time
samples = []
with tempfile.NamedTemporaryFile(dir=".") as f:
    for _ in range(2000):
        t = time.perf_counter()
        os.write(f.fileno(), b"x" * 4096)
        os.fsync(f.fileno())
        samples.append((time.perf_counter() - t) * 1000)
samples.sort()
q = lambda p: samples[min(len(samples) - 1, int(p * len(samples)))]
print(json.dumps({"fsync_ms": {"p50": round(q(0.5), 3), "p99": round(q(0.99), 3), "p999": round(q(0.999), 3), "max": round(samples[-1], 3)}}))
rows = [r for r in map(json.loads, open(sys.argv[1])) if "server" in r]
def med(label, server, key):
    v = [r for r in rows if r["scenario"] == label and r["server"] == server]
    if not v: return None
    x = [r["latency_ms"]["p99"] if key == "p99" else r["deliveries_per_s"] if key == "dps" else r["server_cpu_pct"] * 10000 / max(r["deliveries_per_s"], 1) for r in v]
    return statistics.median(x)
summary = {}
for label in ["closed", "r200", "r20", "s200r300"]:
    for server in sorted({r["server"] for r in rows if r["server"] != "nats"}):
        entry = {}
        for key in ["dps", "p99", "cpu_us_per_delivery"]:
            k = "cpu" if key.startswith("cpu") else key
            m, n = med(label, server, k), med(label, "nats", k)
            if m is None: continue
            entry[key] = {"mesher": round(m, 2), "nats": round(n, 2) if n else None, "ratio": round(m / n, 2) if n else None}
        summary[f"{label} {server}"] = entry
print(json.dumps({"summary": summary, "results": sys.argv[1]}, indent=1))
PY
