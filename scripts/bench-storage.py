#!/usr/bin/env python3
"""Bytes on disk per stored event, for SDK-like events of about 5 KB and 50 KB.

Usage: scripts/bench-storage.py MESHER_BINARY [EVENTS]
Starts the binary on a fresh SQLite file, posts EVENTS (default 2,000) Sentry /store/
events of each size, stops the server (SIGTERM: its pool closes and SQLite checkpoints the
WAL), and prints one JSON line per size: the database's growth per event.
"""
import json, os, random, signal, socket, subprocess, sys, tempfile, time, urllib.request


def sdk_event(i, target):
    """A Python SDK error event with a chain, frames with source context and locals."""
    rnd = random.Random(i)
    frames = []
    n = 0
    while True:
        fn = f"handler_{rnd.randrange(1000)}"
        frames.append({
            "filename": f"app/module_{n % 7}.py", "abs_path": f"/srv/app/module_{n % 7}.py",
            "function": fn, "module": f"app.module_{n % 7}", "lineno": 10 + n, "colno": 4,
            "in_app": n % 3 != 0,
            "pre_context": [f"    value_{k} = compute({k}, request.user.id)" for k in range(5)],
            "context_line": f"    return {fn}(payload)",
            "post_context": [f"    log.debug('step {k}')" for k in range(5)],
            "vars": {"payload": {"order_id": rnd.randrange(10**9), "items": [rnd.randrange(100) for _ in range(5)]},
                     "request": "<WSGIRequest: POST '/checkout'>", "self": f"<Handler at 0x{rnd.getrandbits(48):x}>"},
        })
        n += 1
        ev = {
            "event_id": f"{i:032x}", "level": "error", "platform": "python",
            "timestamp": time.time(), "environment": "production", "release": "shop@1.4.2",
            "server_name": "web-1", "tags": {"region": "eu-west", "route": "/checkout"},
            "user": {"id": str(i % 500), "ip_address": "10.0.0.1"},
            "request": {"method": "POST", "url": "https://shop.example/checkout",
                        "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "Accept": "*/*"}},
            "contexts": {"runtime": {"name": "CPython", "version": "3.11.7"},
                         "os": {"name": "Linux"}, "trace": {"trace_id": f"{rnd.getrandbits(128):032x}", "span_id": f"{rnd.getrandbits(64):016x}"}},
            "breadcrumbs": {"values": [{"category": "query", "message": f"SELECT * FROM orders WHERE id = {rnd.randrange(10**6)}", "timestamp": time.time()} for _ in range(5)]},
            "exception": {"values": [
                {"type": "KeyError", "value": "'sku'", "stacktrace": {"frames": frames[: len(frames) // 2 + 1]}},
                {"type": "CheckoutError", "value": f"order {i} failed", "stacktrace": {"frames": frames}},
            ]},
            "modules": {f"package-{k}": f"1.{k}.0" for k in range(30)},
            "sdk": {"name": "sentry.python", "version": "2.75.0"},
        }
        body = json.dumps(ev).encode()
        if len(body) >= target:
            return body


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def db_bytes(path):
    """The database file's size once the WAL is folded into it."""
    import sqlite3
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return os.path.getsize(path)


def column_bytes(path):
    """Average stored bytes of the event columns that hold the event's content."""
    import sqlite3
    con = sqlite3.connect(path)
    cols = [r[1] for r in con.execute("PRAGMA table_info(events)")]
    out = {}
    for c in ("detail", "raw"):
        if c in cols:
            out[c] = round(con.execute(f"SELECT avg(length({c})) FROM events").fetchone()[0] or 0)
    con.close()
    return out


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    for target in (5_000, 50_000):
        work = tempfile.mkdtemp()
        db = os.path.join(work, "m.db")
        url = f"sqlite://{db}"
        created = json.loads(subprocess.check_output([binary, "project", "create", "bench", "--database-url", url]))
        port = free_port()

        def start():
            server = subprocess.Popen(
                [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", url, "--rate-limit", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
                    break
                except OSError:
                    time.sleep(0.1)
            return server

        # Once to migrate, so that the growth measured is the events' alone.
        server = start()
        server.send_signal(signal.SIGTERM); server.wait()
        before = db_bytes(db)
        server = start()
        sizes = []
        for i in range(count):
            body = sdk_event(i + 1, target)
            sizes.append(len(body))
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/{created['id']}/store/", data=body,
                                         headers={"X-Sentry-Auth": f"Sentry sentry_key={created['ingest_key']}", "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
        server.send_signal(signal.SIGTERM); server.wait()
        after = db_bytes(db)
        print(json.dumps({"binary": binary, "event_bytes": round(sum(sizes) / len(sizes)), "events": count,
                          "disk_bytes_per_event": round((after - before) / count), "column_bytes": column_bytes(db)}))


if __name__ == "__main__":
    main()
