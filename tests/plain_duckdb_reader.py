"""A reader that uses plain DuckDB only (no project code), run as its own process by the store
tests: it loops queries over a store's catalog until a stop file appears, then prints one JSON
object: every error message (with the query's start and end time), per iteration the row counts
and distinct key counts of each view, and the slowest query's seconds.

    python tests/plain_duckdb_reader.py STORE/catalog.duckdb STOP_FILE [--sleep 0.01]
"""

import json
import os
import sys
import time

import duckdb

#: (view, its key): each query returns (rows, distinct keys)
QUERIES = {
    "samples": "select count(*), count(distinct (run_id, sample_key)) from samples",
    "maps": "select count(*), count(distinct (run_id, sample_key, site, step, branch, token, head, stage)) from maps",
    "faces": "select count(*), count(distinct (run_id, sample_key, role)) from faces",
    "metrics": "select count(*), count(distinct (run_id, sample_key, name, model)) from metrics",
    "map_values": "select count(*), count(distinct (run_id, sample_key, site, step, branch, token, head, stage)) "
                  "from map_values",
}


def main(argv: list[str]) -> int:
    catalog, stop = argv[0], argv[1]
    sleep = float(argv[3]) if len(argv) > 3 and argv[2] == "--sleep" else 0.0
    assert not any(m == "store" or m.startswith(("store.", "tests", "fastface")) for m in sys.modules)
    con = duckdb.connect(catalog, read_only=True)
    errors, rounds, slowest = [], [], 0.0
    try:
        while not os.path.exists(stop):
            row = {}
            for name, sql in QUERIES.items():
                t0 = time.time()
                try:
                    row[name] = list(con.execute(sql).fetchall()[0])
                except duckdb.Error as e:
                    errors.append(f"{name} ({t0:.3f}-{time.time():.3f}): {e}")
                slowest = max(slowest, time.time() - t0)
            rounds.append(row)
            time.sleep(sleep)
    finally:
        con.close()
    print(json.dumps({"errors": errors, "rounds": rounds, "slowest_query_s": round(slowest, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
