"""The DuckDB mode of the health workload benchmark (`cargo bench --bench workload`).

Usage: python benches/workload_duckdb.py TABLES.json

TABLES.json, written by the benchmark, names the Parquet files of each table: the live files
of each stream, taken from the catalog, and exports of `meta.subjects` and
`reference.foods`. Each table becomes a view over its files (a schema-qualified name gets its
schema), so the queries read the same files the engine does. The script then prints one JSON
line, {"version": "...", "threads": N}, and answers queries, one JSON line each way:

    in:  {"sql": "SELECT ...", "runs": 5}
    out: {"median_ms": 1.23, "rows": 60}   or   {"error": "..."}

Each query runs once to warm up and then `runs` times; the wall clock is taken around running
the query and reading every row as Arrow record batches, counted as they arrive and not kept
(as the engine's modes do), and the median is reported. The queries'
DuckDB texts are kept beside ours in benches/workload.rs. Ends at the end of its input.

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


def answer(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    with open(sys.argv[1]) as f:
        tables = json.load(f)["tables"]
    connection = duckdb.connect()
    for table, files in tables.items():
        if "." in table:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(table.split('.')[0])}")
        name = ".".join(quote(part) for part in table.split("."))
        listing = ", ".join(literal(path) for path in files)
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")
    threads = connection.execute("SELECT current_setting('threads')").fetchall()[0][0]
    answer({"version": duckdb.__version__, "threads": threads})

    def run(sql):
        started = time.perf_counter()
        relation = connection.sql(sql)
        # DuckDB 2 renamed fetch_arrow_reader.
        reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        rows = sum(batch.num_rows for batch in reader())
        return time.perf_counter() - started, rows

    for line in sys.stdin:
        request = json.loads(line)
        try:
            _, rows = run(request["sql"])
            times = []
            for _ in range(request["runs"]):
                elapsed, again = run(request["sql"])
                if again != rows:
                    raise RuntimeError(f"{rows} rows, then {again}")
                times.append(elapsed * 1e3)
            answer({"median_ms": statistics.median(times), "rows": rows})
        except (duckdb.Error, RuntimeError) as error:
            answer({"error": str(error)})


if __name__ == "__main__":
    main()
