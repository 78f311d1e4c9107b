"""The DuckDB mode of the health workload benchmark (`cargo bench --bench workload`).

Usage: python benches/workload_duckdb.py REQUEST.json

The benchmark writes the request: the Parquet files of each table (the live files of each
stream, taken from the catalog, and exports of `meta.subjects` and `reference.foods`), the
queries translated to DuckDB SQL (kept beside ours in benches/workload.rs) and the number of
runs. Each table becomes a view over its files (schema-qualified names get their schema), so
the queries read the same files the engine does. Each query runs once to warm up and then
RUNS times; the wall clock is taken around execute + fetching every row as Arrow, and the
median is reported. Prints JSON on stdout:

    {"version": "...", "threads": N,
     "results": {"q1": {"median_ms": 1.2, "rows": 60}, "q2": {"error": "..."}, ...}}

Needs the duckdb and pyarrow packages (pip install duckdb pyarrow).
"""

import json
import statistics
import sys
import time

import duckdb


def quote(identifier):
    return '"' + identifier.replace('"', '""') + '"'


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def main():
    with open(sys.argv[1]) as f:
        request = json.load(f)
    connection = duckdb.connect()
    for table, files in request["tables"].items():
        name = ".".join(quote(part) for part in table.split("."))
        if "." in table:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(table.split('.')[0])}")
        listing = ", ".join(literal(path) for path in files)
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")
    threads = connection.execute("SELECT current_setting('threads')").fetchall()[0][0]

    def run(sql):
        started = time.perf_counter()
        relation = connection.sql(sql)
        # DuckDB 2 renamed fetch_arrow_table.
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        rows = fetch().num_rows
        return time.perf_counter() - started, rows

    results = {}
    for query in request["queries"]:
        try:
            _, rows = run(query["sql"])
            times = []
            for _ in range(request["runs"]):
                elapsed, again = run(query["sql"])
                if again != rows:
                    raise RuntimeError(f"{rows} rows, then {again}")
                times.append(elapsed * 1e3)
            median = statistics.median(times)
            results[query["name"]] = {"median_ms": median, "rows": rows}
            print(f"  {query['name']}: {median:.2f} ms, {rows} rows", file=sys.stderr)
        except (duckdb.Error, RuntimeError) as error:
            results[query["name"]] = {"error": str(error)}
            print(f"  {query['name']}: {error}", file=sys.stderr)
    json.dump({"version": duckdb.__version__, "threads": threads, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
