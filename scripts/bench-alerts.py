#!/usr/bin/env python3
"""An error storm with webhooks (SPEC §7): N new issues ingested while one receiver takes
300 ms per answer and another accepts connections and never answers.

Usage: scripts/bench-alerts.py MESHER_BINARY [ISSUES]
Runs the storm twice on fresh SQLite files — without webhooks, then with the two — and
prints one JSON line: ingest time for both, how many deliveries the slow receiver got,
the largest, whether every issue was alerted exactly once, and when the last alert came.
"""
import http.server, json, os, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Slow(http.server.BaseHTTPRequestHandler):
    seen = {}          # issue id -> times alerted
    deliveries = []    # alerts per delivery
    last = [0.0]
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Slow.lock:
            Slow.deliveries.append(len(body["alerts"]))
            for a in body["alerts"]:
                Slow.seen[a["issue"]["id"]] = Slow.seen.get(a["issue"]["id"], 0) + 1
            Slow.last[0] = time.perf_counter()
        time.sleep(0.3)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def hung_receiver(port):
    """Accepts every connection and never answers."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    held = []
    def loop():
        while True:
            c, _ = s.accept()
            held.append(c)
    threading.Thread(target=loop, daemon=True).start()


def storm(binary, issues, hooks):
    work = tempfile.mkdtemp(prefix="mesher-bench-alerts-")
    db = f"sqlite://{work}/b.db"
    created = json.loads(subprocess.check_output([binary, "project", "create", "storm", "--database-url", db]))
    for url in hooks:
        subprocess.check_output([binary, "webhook", "add", str(created["id"]), url, "--database-url", db])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        ["taskset", "-c", "0", binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", db, "--rate-limit", "0"],
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
        def post(first):
            batch = [{"message": f"storm {i}", "fingerprint": [f"storm-{i}"]} for i in range(first, first + 100)]
            req = urllib.request.Request(base + "/api/v1/events/bulk", data=json.dumps(batch).encode(), method="POST")
            req.add_header("Authorization", f"Bearer {created['ingest_key']}")
            req.add_header("Content-Type", "application/json")
            assert urllib.request.urlopen(req, timeout=60).status == 202
        threads = []
        for t in range(4):
            firsts = list(range(t * 100, issues, 400))
            th = threading.Thread(target=lambda f=firsts: [post(x) for x in f])
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        ingest_s = time.perf_counter() - started
        delivered_s = None
        if hooks:
            deadline = time.perf_counter() + 300
            while len(Slow.seen) < issues and time.perf_counter() < deadline:
                time.sleep(0.2)
            delivered_s = Slow.last[0] - started
        return ingest_s, delivered_s
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main():
    binary = sys.argv[1]
    issues = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    slow_port, hung_port = free_port(), free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", slow_port), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hung_receiver(hung_port)
    plain_s, _ = storm(binary, issues, [])
    with_s, delivered_s = storm(
        binary, issues, [f"http://127.0.0.1:{slow_port}/hook", f"http://127.0.0.1:{hung_port}/hook"]
    )
    print(json.dumps({
        "issues": issues,
        "ingest_s_without_webhooks": round(plain_s, 2),
        "ingest_s_with_webhooks": round(with_s, 2),
        "deliveries": len(Slow.deliveries),
        "largest_delivery": max(Slow.deliveries or [0]),
        "every_issue_alerted_once": len(Slow.seen) == issues and all(n == 1 for n in Slow.seen.values()),
        "last_alert_after_s": round(delivered_s, 2) if delivered_s else None,
    }))


if __name__ == "__main__":
    main()
