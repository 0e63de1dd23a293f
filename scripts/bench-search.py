#!/usr/bin/env python3
"""Read API speed on a big project (issue 12's scale): 1,000,000 events in 10,000 issues,
one of them with 100,000 events, all received within the last minutes (the stats window
holds every one of them, as in a storm).

Usage: scripts/bench-search.py MESHER_BINARY [EVENTS] [ISSUES]
Starts the binary on a fresh SQLite file (or MESHER_DATABASE_URL), loads the events with
bulk requests, then times each read (median and max of 7 calls, in ms) and prints one JSON
line: search by tag, environment, release and text (matching and matching nothing), the
tag breakdown of the big issue, project and issue stats, and a page of the big issue's
events.
"""
import json, os, random, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.parse, urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(base, path, token, body=None):
    req = urllib.request.Request(base + path, data=body, method="POST" if body else "GET")
    req.add_header("Authorization", f"Bearer {token}")
    if body:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def event(i, issues, big_every):
    rnd = random.Random(i)
    # Every `big_every`-th event goes to issue 0 (the big one); the rest spread evenly.
    group = 0 if i % big_every == 0 else 1 + i % (issues - 1)
    return {
        "message": f"failure in group {group}",
        "fingerprint": [f"group-{group}"],
        "level": "error" if i % 5 else "warning",
        "environment": ("production", "staging", "dev")[i % 3],
        "release": f"shop@1.{i % 20}",
        "tags": {
            "browser": ("Chrome 120", "Firefox 121", "Safari 17", "Edge 120", "Opera 105")[rnd.randrange(5)],
            "region": f"region-{group % 12}",
            "user": f"u{rnd.randrange(5000)}",
        },
    }


def timed(base, path, token, runs=7):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        body = call(base, path, token)
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}, body


def main():
    binary = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    issues = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    big_every = 10  # the big issue gets a tenth of the events
    work = tempfile.mkdtemp(prefix="mesher-bench-search-")
    db = os.environ.get("MESHER_DATABASE_URL", f"sqlite://{work}/bench.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    created = json.loads(subprocess.check_output([binary, "project", "create", "bench", "--database-url", db]))
    key, token, pid = created["ingest_key"], created["token"], created["id"]
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", db, "--rate-limit", "0"],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        started = time.perf_counter()
        req_key = key
        for first in range(0, total, 100):
            batch = [event(i, issues, big_every) for i in range(first, min(total, first + 100))]
            req = urllib.request.Request(base + "/api/v1/events/bulk", data=json.dumps(batch).encode(), method="POST")
            req.add_header("Authorization", f"Bearer {req_key}")
            req.add_header("Content-Type", "application/json")
            urllib.request.urlopen(req, timeout=120).read()
        load_s = time.perf_counter() - started
        listed = call(base, f"/api/v1/projects/{pid}/issues?sort=event_count&limit=1", token)
        big = listed["issues"][0]
        q = lambda s: f"/api/v1/projects/{pid}/issues?limit=50&query=" + urllib.parse.quote(s)
        out = {"events": total, "issues": issues, "big_issue_events": big["event_count"], "load_s": round(load_s, 1)}
        for name, path in [
            ("search_tag", q("browser:\"Safari 17\"")),
            ("search_tag_none", q("browser:Lynx")),
            ("search_environment", q("environment:staging")),
            ("search_environment_none", q("environment:nowhere")),
            ("search_release", q("release:shop@1.7")),
            ("search_text", q("\"group 4242\"")),
            ("search_text_none", q("nothing-like-this")),
            ("tag_breakdown_big_issue", f"/api/v1/issues/{big['id']}/tags"),
            ("project_stats", f"/api/v1/projects/{pid}/stats?minutes=30"),
            ("issue_stats_big_issue", f"/api/v1/issues/{big['id']}/stats?minutes=30"),
            ("issue_events_page", f"/api/v1/issues/{big['id']}/events?limit=1"),
        ]:
            out[name], body = timed(base, path, token)
            if name == "tag_breakdown_big_issue":
                out["tag_keys"] = len(body["tags"])
        print(json.dumps(out))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
