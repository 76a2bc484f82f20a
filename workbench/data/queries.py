"""Cached query access for the pages.

* ``sandbox(path)`` (``st.cache_resource``): one locked-down read-only connection per store
  (workbench.data.sql_console.Sandbox); every query runs on its own cursor.
* ``query(name, **params)``: runs ``workbench/data/sql/<name>.sql`` (or a store query
  ``store/sql/queries/<name>.sql`` with ``store_query``) with bound ``$parameters``.  Results
  are cached with ``st.cache_data`` on functions whose every input is an argument (store
  path, query name, parameters as JSON, a refresh counter); live data (runs, progress) has a
  short ttl, summaries a longer one, committed images and maps (immutable) the longest.
  The sidebar's Refresh button bumps the counter.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from workbench.data.sql_console import Sandbox

SQL_DIR = Path(__file__).resolve().parent / "sql"
ENV_STORE = "FASTFACE_STORE"
TTL = {"live": 3, "summary": 60, "static": 3600}
STATE_RUNS = "wb_selected_runs"          # run ids chosen on the Runs page (used by every page)
STATE_FOCUS = "wb_focus_sample"          # {run_id, sample_key, identity, prompt, seed} to open on Samples
STATE_NONCE = "wb_refresh_nonce"
STATE_FIGURES = "wb_figures"             # figures shown this session (for the Figures page)


# ------------------------------------------------------------------ store path
def store_path(argv: list[str] | None = None) -> str | None:
    """The store folder: ``--store PATH`` after ``--`` on the streamlit command line, else
    the FASTFACE_STORE environment variable, else None."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--store")
    args, _ = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    path = args.store or os.environ.get(ENV_STORE) or None
    return os.path.abspath(path) if path else None


class StoreUnavailable(RuntimeError):
    pass


def _close_sandbox(box: Sandbox) -> None:
    box.close()


@st.cache_resource(show_spinner=False, on_release=_close_sandbox)
def sandbox(path: str) -> Sandbox:
    """The read-only sandboxed connection of a store (opened once per process; closed when
    the cache releases it, and at interpreter exit: see below)."""
    if not Path(path).is_dir():
        raise StoreUnavailable(f"Store folder {path} does not exist.")
    from store.db import open_store  # (re)builds the catalog when missing or outdated

    store = open_store(path)
    return Sandbox(store.path, store.catalog_path)


# Streamlit does not promise on_release at shutdown: release (close) the cached connections
# at exit ourselves, before DuckDB's module is torn down with them still open.
atexit.register(sandbox.clear)


def require_store() -> tuple[str, Sandbox]:
    """(path, sandbox) of the configured store, or render an empty state and stop the page."""
    path = store_path()
    if not path:
        st.info("No store selected. Start the workbench with `fastface workbench --store PATH` "
                f"or set `{ENV_STORE}=PATH`. To make a store, run `fastface demo` or `fastface capture ...`.")
        st.stop()
    try:
        return path, sandbox(path)
    except Exception as e:  # noqa: BLE001 shown to the user, never a traceback
        st.error(f"Cannot open the store at `{path}`: {e}")
        st.stop()
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ SQL text
@functools.lru_cache(maxsize=None)
def load_sql(name: str) -> str:
    f = SQL_DIR / f"{name}.sql"
    if not f.is_file():
        raise KeyError(f"unknown workbench query {name!r}")
    return f.read_text(encoding="utf-8")


def store_sql(name: str) -> str:
    from store.queries import load_query

    return load_query(name)


def _execute(path: str, kind: str, name: str, params_json: str) -> pd.DataFrame:
    from store.queries import execute_df  # retries a query that raced a compaction

    sql = load_sql(name) if kind == "workbench" else store_sql(name)
    params = json.loads(params_json)
    cur = sandbox(path).cursor()
    try:
        return execute_df(cur, sql, params)
    finally:
        cur.close()


@st.cache_data(ttl=TTL["live"], show_spinner=False, max_entries=200)
def _cached_live(path: str, kind: str, name: str, params_json: str, nonce: int) -> pd.DataFrame:
    return _execute(path, kind, name, params_json)


@st.cache_data(ttl=TTL["summary"], show_spinner=False, max_entries=500)
def _cached_summary(path: str, kind: str, name: str, params_json: str, nonce: int) -> pd.DataFrame:
    return _execute(path, kind, name, params_json)


@st.cache_data(ttl=TTL["static"], show_spinner=False, max_entries=300)
def _cached_static(path: str, kind: str, name: str, params_json: str, nonce: int) -> pd.DataFrame:
    return _execute(path, kind, name, params_json)


_CACHED = {"live": _cached_live, "summary": _cached_summary, "static": _cached_static}


def _params_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def query(name: str, *, freshness: str = "summary", store: bool = False, **params) -> pd.DataFrame:
    """Run a named query of workbench/data/sql (or of store/sql/queries with store=True)."""
    path, _ = require_store()
    fn = _CACHED[freshness]
    return fn(path, "store" if store else "workbench", name, _params_json(params),
              st.session_state.get(STATE_NONCE, 0))


def provenance(name: str, *, store: bool = False, **params) -> dict:
    """What made a chart: query name, its SQL text, bound parameters, run ids, store path."""
    sql = store_sql(name) if store else load_sql(name)
    run_ids = params.get("run_ids") or ([params["run_id"]] if params.get("run_id") else [])
    return {"query": ("store:" if store else "workbench:") + name, "sql": sql,
            "params": json.loads(_params_json(params)), "run_ids": list(run_ids),
            "store": store_path()}


@st.cache_data(ttl=TTL["summary"], show_spinner=False)
def missing_summaries(path: str) -> int:
    """Sample folders and segments with maps but no summary tables (store/backfill.py)."""
    from store.backfill import missing_summaries as count

    return count(path)


def refresh() -> None:
    """Forget cached results (next queries re-read the store)."""
    st.session_state[STATE_NONCE] = st.session_state.get(STATE_NONCE, 0) + 1


# ------------------------------------------------------------------ runs selection
def runs() -> pd.DataFrame:
    return query("runs", freshness="live")


def selected_runs(all_runs: pd.DataFrame | None = None) -> list[str]:
    """Runs picked on the Runs page (those still in the store); until some are picked, the
    newest sweep with its baseline run(s) (workbench.data.selection.default_runs)."""
    from workbench.data.selection import default_runs

    df = runs() if all_runs is None else all_runs
    known = set(df["run_id"]) if len(df) else set()
    chosen = [r for r in st.session_state.get(STATE_RUNS) or [] if r in known]
    return chosen or default_runs(df)


def runs_picked(all_runs: pd.DataFrame) -> bool:
    """Whether the runs in use were picked by the user (not the default)."""
    known = set(all_runs["run_id"]) if len(all_runs) else set()
    return any(r in known for r in st.session_state.get(STATE_RUNS) or [])


def selection_caption() -> str:
    """The sidebar's line about the runs in use (never stops the page: no store, no runs and
    an unreadable store each get their own line)."""
    from workbench.data.selection import describe

    path = store_path()
    if not path:
        return "Runs chosen: none (no store)"
    try:
        sandbox(path)
        all_runs = runs()
    except Exception:  # noqa: BLE001 the page itself shows the error
        return "Runs chosen: none (store not readable)"
    return describe(selected_runs(all_runs), all_runs, runs_picked(all_runs))


def run_meta(all_runs: pd.DataFrame) -> dict[str, dict]:
    """run_id -> {preset, ip_scale, varied, label} for legends and colours (``varied``: a grid
    cell's 'path=value, ...', None for a run that is no grid cell)."""
    from workbench.charts.style import run_label, run_symbols

    out = {}
    for r in all_runs.itertuples(index=False):
        ip = None if pd.isna(r.ip_scale) else float(r.ip_scale)
        varied = getattr(r, "varied", None)
        varied = varied if isinstance(varied, str) else None
        out[r.run_id] = {"preset": r.preset, "ip_scale": ip, "varied": varied,
                         "label": run_label(r.run_id, r.preset, ip, varied)}
    symbols = run_symbols([(k, v["preset"], v["ip_scale"]) for k, v in out.items()])
    for k, v in out.items():
        v["symbol"] = symbols[k]
    return out


def run_labels(run_ids, all_runs: pd.DataFrame):
    """Labels of the runs ``run_ids`` by what differs between them, and the caption of what they
    share (workbench.data.labels.differing_labels on the runs query's rows)."""
    from workbench.data.labels import differing_labels

    rows = all_runs.set_index("run_id", drop=False)
    ids = [r for r in dict.fromkeys(run_ids) if r in rows.index]
    return differing_labels([rows.loc[r].to_dict() for r in ids])


def no_runs_message() -> None:
    st.info("No runs yet: run `fastface demo` or `fastface capture ...` to fill this store. A capture "
            "that is starting (loading its models) shows here as soon as its runs begin: use \"Refresh data\".")


def capture_progress() -> dict | None:
    """How far the capture writing into the store is (workbench.data.progress), or None when no
    run is running, there is no store or it cannot be read (the page says so itself)."""
    from workbench.data.progress import capture_progress as progress

    path = store_path()
    if not path:
        return None
    try:
        sandbox(path)
        return progress(runs())
    except Exception:  # noqa: BLE001 the page shows the error
        return None


def chosen_runs_or_stop() -> tuple[str, pd.DataFrame, list[str], dict[str, dict]]:
    """The opening of every analysis page: (store path, all runs, the chosen run ids, their
    legend metadata); stops the page with the empty-store message when there are no runs."""
    path, _ = require_store()
    all_runs = runs()
    if all_runs.empty:
        no_runs_message()
        st.stop()
    return path, all_runs, selected_runs(all_runs), run_meta(all_runs)


def keep_valid(key: str, options) -> None:
    """Forget a widget value that is no longer among its options (runs or filters changed)."""
    if key in st.session_state and st.session_state[key] not in list(options):
        del st.session_state[key]
