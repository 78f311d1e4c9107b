#!/usr/bin/env python3
"""Dashboard API load: 32 concurrent clients send the dashboard's kinds of queries to
`POST /api/v1/query` of a running `healthai demo` (or `serve`) and the latencies are reported
as p50/p90/p99 per query and overall. Standard library only.

    healthai demo --password bench &          # the demo dataset, 100 subjects x 30 days
    python3 benches/dashboard_load.py --url http://127.0.0.1:8080 --password bench

Each client logs in once, keeps one HTTP connection alive (as a browser does), then loops
over the queries for --seconds. The queries are those of the Overview and Activity views for
the last 28 days of data, for the whole organization (the heaviest filter) and for one subject
(the common one). Like the dashboard, clients send `Cache-Control: max-age=30` (they accept an
answer up to 30 s old, so the server may answer from its result cache); `--max-age 0` makes
every query computed, which measures the engine itself (rollups, kernel).
"""

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse
import urllib.request

WINDOW = "time >= CAST($1 AS TIMESTAMP) AND time < CAST($2 AS TIMESTAMP)"

QUERIES = {
    "active subjects per day": "SELECT day, count(DISTINCT subject_id) AS subjects FROM ("
        + " UNION ALL ".join(
            f"SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day FROM {stream} "
            f"WHERE {WINDOW} GROUP BY 1, 2" for stream in ["heart_rate", "steps", "meals", "body"])
        + ") GROUP BY 1 ORDER BY 1",
    "steps per day": f"""
        SELECT CAST(date_trunc('day', time) AS DATE) AS day,
               CAST(sum(count) AS DOUBLE) / count(DISTINCT subject_id) AS steps
        FROM steps WHERE {WINDOW} GROUP BY 1 ORDER BY 1""",
    "resting heart rate": f"""
        SELECT day, avg(rest) AS resting FROM (
          SELECT subject_id, CAST(date_trunc('day', hour) AS DATE) AS day, min(bpm) AS rest FROM (
            SELECT subject_id, date_trunc('hour', time) AS hour, avg(bpm) AS bpm
            FROM heart_rate WHERE {WINDOW} GROUP BY 1, 2 HAVING count(*) >= 6)
          GROUP BY 1, 2)
        GROUP BY 1 ORDER BY 1""",
    "sleep stages": f"""
        SELECT CAST(date_trunc('day', end_time) AS DATE) AS night, stage,
               sum(CAST(end_time AS BIGINT) - CAST(time AS BIGINT)) / 3.6e12
                 / count(DISTINCT subject_id) AS hours
        FROM sleep WHERE {WINDOW} GROUP BY 1, 2 ORDER BY 1, 2""",
    "workouts per week": f"""
        SELECT CAST(date_trunc('week', time) AS DATE) AS week, sport, count(*) AS workouts
        FROM workouts WHERE {WINDOW} GROUP BY 1, 2 ORDER BY 1, 2""",
    "one subject's heart rate by hour": f"""
        SELECT date_bin(INTERVAL '1 hour', time) AS hour, avg(bpm), max(bpm)
        FROM heart_rate WHERE {WINDOW} AND subject_id = $3 GROUP BY 1 ORDER BY 1""",
}


def post(url, body, token=None, headers=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


class Connection:
    """One client's kept-alive HTTP connection, as a browser holds one."""

    def __init__(self, url, token, headers):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = {"content-type": "application/json", "authorization": f"Bearer {token}", **headers}

    def query(self, body):
        self.connection.request("POST", "/api/v1/query", json.dumps(body), self.headers)
        reply = self.connection.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{reply.status}: {data[:200]!r}")
        return reply.getheader("x-healthai-cache"), json.loads(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", default="default/demo@healthai.local")
    parser.add_argument("--password", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-age", type=int, default=30,
                        help="the Cache-Control max-age the dashboard sends (0: always computed)")
    args = parser.parse_args()
    headers = {"cache-control": f"max-age={args.max_age}"} if args.max_age > 0 else {}

    def login():
        return post(f"{args.url}/api/v1/auth/login",
                    {"username": args.user, "password": args.password})["access_token"]

    token = login()
    last = post(f"{args.url}/api/v1/query",
                {"sql": "SELECT CAST(max(time) AS VARCHAR) AS last, min(subject_id) AS subject "
                        "FROM heart_rate", "format": "json"}, token)[0]
    end = last["last"][:10]
    start = time.strftime("%Y-%m-%d", time.gmtime(time.mktime(time.strptime(end, "%Y-%m-%d")) - 28 * 86400))
    params = [start, end, last["subject"]]

    latencies = {name: [] for name in QUERIES}
    errors = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    hits = [0]

    def client(index):
        connection = Connection(args.url, login(), headers)
        names = list(QUERIES)
        i = index
        while time.monotonic() < deadline:
            name = names[i % len(names)]
            sql = QUERIES[name]
            used = params[:3] if "$3" in sql else params[:2]
            started = time.perf_counter()
            try:
                cache, _ = connection.query({"sql": sql, "params": used, "format": "json"})
            except Exception as e:  # noqa: BLE001 - counted and reported, the load goes on
                with lock:
                    errors.append(f"{name}: {e}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies[name].append(elapsed)
                hits[0] += cache == "hit"
            i += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def quantiles(values):
        values = sorted(values)
        pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
        return pick(0.5), pick(0.9), pick(0.99)

    everything = [v for vs in latencies.values() for v in vs]
    print(f"{args.clients} clients, {args.seconds:.0f} s, {len(everything)} queries "
          f"({len(everything) / args.seconds:.1f}/s), {len(errors)} errors; window {start} .. {end}; "
          f"max-age {args.max_age}: {hits[0]} answered from the result cache")
    print(f"{'query':<36} {'n':>6} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9}")
    for name, values in latencies.items():
        if values:
            p50, p90, p99 = quantiles(values)
            print(f"{name:<36} {len(values):>6} {p50:>9.1f} {p90:>9.1f} {p99:>9.1f}")
    if everything:
        p50, p90, p99 = quantiles(everything)
        print(f"{'all':<36} {len(everything):>6} {p50:>9.1f} {p90:>9.1f} {p99:>9.1f}")
        print(f"mean {statistics.mean(everything):.1f} ms")
    for error in errors[:5]:
        print("error:", error)


if __name__ == "__main__":
    main()
