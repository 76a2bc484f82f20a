"""``fastface export`` (a run's tables as Parquet files) and ``fastface store vacuum | backfill``
(maintenance of a store folder, store/README.md)."""
from __future__ import annotations

import argparse
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """'0', '90', '90s', '15m', '1h', '7d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: give a duration such as 0, 30s, 15m, 1h or 7d")
    return float(m[1]) * _UNITS[m[2] or "s"]


def add_store(sub) -> None:
    p = sub.add_parser("store", help="store maintenance (vacuum, backfill)")
    ops = p.add_subparsers(dest="store_command", required=True)
    v = ops.add_parser(
        "vacuum", help="remove the sample folders that compaction merged into segments",
        description="Compaction merges a run's sample folders into a segment and hides them at once, but "
                    "leaves them on disk: a query that listed them a moment earlier still reads them. "
                    "They are removed automatically one hour after their segment became active, when no "
                    "process has the catalog open; vacuum removes those older than --older-than now.")
    v.add_argument("--store", required=True, help="the store folder")
    v.add_argument("--older-than", type=duration, required=True, metavar="DURATION",
                   help="remove folders whose segment has been active this long: 0, 30s, 15m, 1h, 7d")
    v.add_argument("--run", help="only this run (default: every run)")
    v.add_argument("--even-with-readers", action="store_true",
                   help="remove them even while a process has the catalog open (its running query can fail)")
    v.set_defaults(func=cmd_vacuum)
    b = ops.add_parser(
        "backfill", help="write (or update) the map summary tables of a store made by older code",
        description="Stores written before the map_stats / face_mass summary tables (store/summaries.py) "
                    "existed have none; the workbench's Attention page and the map_stats and map_face_mass "
                    "views count only samples that have them. backfill reads each sample folder's and "
                    "segment's maps once (in batches) and writes them. Stores written before migration 0003 get "
                    "the entropy and face mass of maps with negative values (on their positive part) and the "
                    "counts of excluded maps. Idempotent; safe while readers query.")
    b.add_argument("--store", required=True, help="the store folder")
    b.add_argument("--run", help="only this run (default: every run)")
    b.set_defaults(func=cmd_backfill)


def cmd_vacuum(args) -> int:
    from store.compact import vacuum

    r = vacuum(args.store, args.older_than, args.run, even_with_readers=args.even_with_readers)
    print(f"store {args.store}: {r.n_removed} merged folders removed ({r.bytes_freed / 1e6:.1f} MB) in "
          f"{len(r.runs)} runs, {r.n_tmp} leftovers of dead processes removed from tmp/")
    if r.n_kept:
        print(f"kept {r.n_kept} folders: process {r.reader_pid} has {args.store}/catalog.duckdb open (a reader); "
              "close it and run again, or pass --even-with-readers")
    return 0


def cmd_backfill(args) -> int:
    from store.backfill import backfill

    r = backfill(args.store, args.run, progress=lambda run, d: print(f"{run}/{d.name}", flush=True))
    print(f"store {args.store}: summaries written for {r.n_sample_dirs} sample folders and {r.n_segments} "
          f"segments ({r.n_maps} maps read, {r.n_entropy_fixed} entropies of maps with negative values "
          f"recomputed) in {len(r.runs)} runs")
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a run's tables as Parquet files")
    p.add_argument("--store", required=True)
    p.add_argument("--run", required=True, help="run id (see the workbench's Runs page)")
    p.add_argument("--to", required=True, help="target folder")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from store.export import export_run

    for table, (path, rows) in export_run(args.store, args.run, args.to).items():
        print(f"{table:10s} {rows:8d} rows -> {path}")
    return 0


def register(sub) -> None:
    for add in (add_export, add_store):
        add(sub)
