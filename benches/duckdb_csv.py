"""DuckDB's CSV → Parquet rate on a file, the peer figure for `cargo bench --bench ingest`.

Usage: python benches/duckdb_csv.py FILE.csv [RUNS]. Prints the median wall time of RUNS
(default 5) conversions and the rows per second. Needs `pip install duckdb`.
"""

import statistics
import sys
import tempfile
import time

import duckdb

path = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
connection = duckdb.connect()
rows = connection.execute(f"SELECT count(*) FROM read_csv('{path}')").fetchone()[0]
times = []
with tempfile.TemporaryDirectory() as out:
    for run in range(runs):
        started = time.perf_counter()
        connection.execute(
            f"COPY (SELECT * FROM read_csv('{path}')) TO '{out}/run{run}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
        times.append(time.perf_counter() - started)
median = statistics.median(times)
print(f"duckdb {duckdb.__version__}: {rows} rows, median {median * 1000:.0f} ms over {runs} runs, {rows / median / 1e6:.2f} M rows/s")
