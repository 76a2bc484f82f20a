"""``fastface report``: the paper's tables and the fronts over IP-Adapter scales, from a store,
for one evaluation protocol (``--protocol release|corrected``; the metric rows tagged with it).

Aggregation happens in SQL (``store/sql/queries/report_*.sql``, run ids bound as ``$runs``);
this module keeps the rows of the chosen protocol, picks one model per metric, pairs runs with
their baseline and tests the differences; :mod:`fastface.evaluation.report_format` formats.

Tables (METHOD.md sections 6-7): Table 1 = the joint set (every prompt), Table 2 = the
stylistic prompts, Table 3 = the realistic prompts.  One row per run, grouped by
(checkpoint, lora_scale, ip_scale); the baseline of a row is the run of the
``--baseline-preset`` (default ``baseline``) with the same checkpoint and scales (when there
are several, the one sharing the most (identity, prompt, seed) units).  Every metric cell is

    mean (change vs baseline)* [n=values/ok samples, FFC=face fails, not evaluated=k; p=P, N pairs]

``n`` counts the samples the mean covers (id_sim has no value where no face was found:
those are the FFC, shown in the ID cell and in its own column), ``not evaluated`` appears
when some ok samples have no row for the metric.  Samples whose generation failed are
counted in the N column.

Statistics (:mod:`fastface.evaluation.stats`): per run and metric, the paired differences to
its baseline over the same (identity, prompt, seed) units; the change is computed from the
paired means (so its sign is the paired difference's): in % for metrics with a meaningful zero,
absolute for ImageReward and the aesthetic score; ``*`` = exact sign-flip p <= 0.05 with at
least 6 pairs (fewer cannot reach 0.05), with a Student-t 95 % interval of the difference.

Fronts: per (checkpoint, lora_scale), ID similarity against CLIP / AE / IR, one line per preset
through its IP-Adapter scales (:func:`workbench.charts.compare.fronts`), and the Pareto-optimal
runs (no other run of the group is at least as good on both axes and better on one).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from fastface.evaluation.protocol import PROTOCOLS, protocol_of
from fastface.evaluation.report_format import (COLUMNS, PRESET_ORDER, PROTOCOL_TEXT, Column,  # noqa: F401
                                               cell_text, fronts_hint, fronts_markdown, latex_table, markdown_table,
                                               preset_rank, stats_markdown)
from fastface.evaluation.report_fronts import FRONT_X, front_figures, fronts_table, pareto_mask  # noqa: F401
from fastface.evaluation.stats import ALPHA, EXACT_MAX_N, MIN_PAIRS, paired_units

SUBSETS = (("table1", "joint", "Table 1: joint set (all prompts)"),
           ("table2", "stylistic", "Table 2: stylistic prompts"),
           ("table3", "realistic", "Table 3: realistic prompts"))


def family(model: str) -> str:
    """'insightface/buffalo_l@ab12' -> 'insightface'; 'dlib' -> 'dlib'; 'tiny:openai/..' -> 'openai'."""
    m = model.split("+", 1)[0]
    m = m[len("tiny:"):] if m.startswith("tiny:") else m
    return m.split("@", 1)[0].split("/", 1)[0]


def _rank(summary: pd.DataFrame, name: str, families: Sequence[str] | None = None,
          exclude: Sequence[str] = ()) -> str | None:
    d = summary[(summary["name"] == name) & (summary["subset"] == "joint")]
    if d.empty:
        return None
    cov = d.groupby("model")["n_rows"].sum()
    models = [m for m in cov.index if family(m) not in exclude]
    if not models:
        return None
    if families:
        for fam in families:
            pick = [m for m in models if family(m) == fam]
            if pick:
                models = pick
                break
    return sorted(models, key=lambda m: ("@" not in m, -int(cov[m]), m))[0]


def choose_models(summary: pd.DataFrame, id_backend: str | None = None) -> dict[str, str | None]:
    """One model per column: id (preferred family ``id_backend``, then insightface, dlib),
    id2 = dlib's id_sim when the primary is not dlib; versioned models (with '@') before
    unversioned ones, then the one covering most samples."""
    order = [f for f in (id_backend, "insightface", "dlib") if f]
    out: dict[str, str | None] = {"id": _rank(summary, "id_sim", order)}
    primary = family(out["id"]) if out["id"] else (id_backend or None)
    out["id2"] = None if primary == "dlib" else _rank(summary, "id_sim", ["dlib"])
    if out["id2"] and family(out["id2"]) != "dlib":
        out["id2"] = None
    out["face_size"] = _rank(summary, "face_size", [primary] if primary else None)
    for c in COLUMNS:
        if c.key not in out:
            out[c.key] = _rank(summary, c.metric)
    # the FFC of an ID column: face_detected of the same model
    out["ffc"] = out["id"]
    out["ffc2"] = out["id2"]
    if out["ffc"] is None:
        out["ffc"] = _rank(summary, "face_detected", [primary] if primary else None)
    return out


@dataclass
class ReportData:
    runs: pd.DataFrame
    summary: pd.DataFrame
    units: pd.DataFrame
    store: str = ""
    protocol: str = "corrected"
    ignored: dict = field(default_factory=dict)  # "untagged" / other protocol -> metric rows left out


def choose_protocol(models, protocol: str | None) -> str:
    """The protocol to report: the one asked for, else the only one the store's rows have."""
    present = sorted({protocol_of(m) for m in models} - {None})
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"--protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        return protocol
    if len(present) > 1:
        raise ValueError("the store holds metric rows of both protocols (release and corrected): pass --protocol "
                         "release or --protocol corrected")
    return present[0] if present else "corrected"


def load_report_data(store_path, runs: Sequence[str] | None = None, protocol: str | None = None) -> ReportData:
    from store.db import connect_read_only
    from store.queries import run_query

    if not Path(store_path).is_dir():
        raise ValueError(f"store {store_path}: no such folder")
    con = connect_read_only(store_path)
    try:
        arg = ",".join(runs or [])
        r = run_query(con, "report_runs", runs=arg)
        if runs:
            unknown = sorted(set(runs) - set(r["run_id"]))
            if unknown:
                known = run_query(con, "report_runs", runs="")["run_id"].tolist()
                raise ValueError(f"unknown run(s) {unknown}; runs in the store: {known[:20]}")
        summary = run_query(con, "report_metric_summary", runs=arg)
        units = run_query(con, "report_metric_units", runs=arg)
    finally:
        con.close()
    protocol = choose_protocol(summary["model"].unique(), protocol)
    tags = units["model"].map(protocol_of)
    ignored: dict[str, int] = {}
    for t in tags[tags != protocol]:
        key = t if isinstance(t, str) else "untagged"
        ignored[key] = ignored.get(key, 0) + 1
    keep_summary = summary["model"].map(protocol_of) == protocol
    return ReportData(r, summary[keep_summary].reset_index(drop=True), units[tags == protocol].reset_index(drop=True),
                      str(Path(store_path).resolve()), protocol, ignored)


_preset_rank = preset_rank


def _group_key(row) -> tuple:
    return (row["checkpoint"] if isinstance(row["checkpoint"], str) else "",
            _num(row["lora_scale"]), _num(row["ip_scale"]))


def _num(v) -> float:
    return float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def preset_label(run) -> str:
    """The run's preset, with a grid cell's coordinates: 'ff-am1 [am.am1.scale_up=1.2]'."""
    varied = run.get("varied")
    return f"{run['preset']} [{varied or 'base'}]" if isinstance(varied, str) else run["preset"]


def order_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs by checkpoint, LoRA scale (high first), IP scale, preset (paper order), run id."""
    def key(x):
        lora, ip = _num(x["lora_scale"]), _num(x["ip_scale"])
        return (_group_key(x)[0], 0.0 if math.isnan(lora) else -lora, -1.0 if math.isnan(ip) else ip,
                _preset_rank(x["preset"]), x["run_id"])

    rows = list(runs.iterrows())
    order = sorted(range(len(rows)), key=lambda i: key(rows[i][1]))
    return runs.iloc[order].reset_index(drop=True)


def _units(units: pd.DataFrame, run_id: str, subset: str, name: str, model: str) -> pd.DataFrame:
    u = units[(units["run_id"] == run_id) & (units["name"] == name) & (units["model"] == model)]
    if subset != "joint":
        u = u[u["category"] == subset]
    return u.groupby(["identity", "prompt", "seed"], as_index=False)["value"].mean()


def baselines(data: ReportData, baseline_preset: str = "baseline") -> dict[str, str | None]:
    """run_id -> its baseline run (same checkpoint, lora_scale, ip_scale; preset =
    baseline_preset; most shared units), or None."""
    runs = data.runs
    keys = {run_id: set(zip(g["identity"], g["prompt"], g["seed"])) for run_id, g in data.units.groupby("run_id")}
    out = {}
    for _, r in runs.iterrows():
        g = _group_key(r)
        cands = [x for _, x in runs.iterrows() if x["preset"] == baseline_preset
                 and all(_same(a, b) if isinstance(a, float) else a == b for a, b in zip(_group_key(x), g))]
        if not cands:
            out[r["run_id"]] = None
            continue
        mine = keys.get(r["run_id"], set())
        best = sorted(cands, key=lambda x: (-len(mine & keys.get(x["run_id"], set())), x["run_id"]))[0]
        out[r["run_id"]] = best["run_id"]
    return out


def _stat(summary: pd.DataFrame, run_id: str, subset: str, name: str, model: str | None) -> dict:
    if model is None:
        return {}
    d = summary[(summary["run_id"] == run_id) & (summary["subset"] == subset) & (summary["name"] == name)
                & (summary["model"] == model)]
    return {} if d.empty else d.iloc[0].to_dict()


def build_table(data: ReportData, subset: str, models: dict, base: dict, *, n_perm: int = 20000,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, paired stats) of one subset.  table: one row per run with, per column key c,
    c_mean, c_n, c_n_rows, c_n_ok, c_rel (% from the paired means; ratio-scale metrics only),
    c_delta, c_lo, c_hi (Student-t), c_p (sign-flip), c_pairs, c_sig; ffc, ffc_n (samples with a
    face_detected row), ffc2, ffc2_n."""
    ok_col = {"joint": "n_ok", "realistic": "n_ok_realistic", "stylistic": "n_ok_stylistic"}[subset]
    fail_col = {"joint": "n_failed", "realistic": "n_failed_realistic", "stylistic": "n_failed_stylistic"}[subset]
    rows, stats = [], []
    for _, r in order_runs(data.runs).iterrows():
        if int(r[ok_col]) == 0 and int(r[fail_col]) == 0:
            continue
        b = base.get(r["run_id"])
        row = {"checkpoint": r["checkpoint"], "lora_scale": r["lora_scale"], "ip_scale": r["ip_scale"],
               "preset": preset_label(r), "run_id": r["run_id"], "baseline_run": b, "n_ok": int(r[ok_col]),
               "n_failed": int(r[fail_col])}
        for key, fk in (("ffc", "ffc"), ("ffc2", "ffc2")):
            st = _stat(data.summary, r["run_id"], subset, "face_detected", models.get(fk))
            row[key] = int(st["n_zero"]) if st else None
            row[f"{key}_n"] = int(st["n_rows"]) if st else 0
        for c in COLUMNS:
            if subset not in c.subsets:
                continue
            model = models.get(c.key)
            st = _stat(data.summary, r["run_id"], subset, c.metric, model)
            mean = float(st["mean"]) if st and st["mean"] is not None and not pd.isna(st["mean"]) else math.nan
            row.update({f"{c.key}_mean": mean, f"{c.key}_n": int(st["n"]) if st else 0,
                        f"{c.key}_n_rows": int(st["n_rows"]) if st else 0, f"{c.key}_n_ok": row["n_ok"],
                        f"{c.key}_rel": math.nan, f"{c.key}_delta": math.nan, f"{c.key}_lo": math.nan,
                        f"{c.key}_hi": math.nan, f"{c.key}_p": math.nan, f"{c.key}_pairs": 0, f"{c.key}_sig": False})
            if b is None or b == r["run_id"] or model is None:
                continue
            bst = _stat(data.summary, b, subset, c.metric, model)
            bmean = float(bst["mean"]) if bst and not pd.isna(bst["mean"]) else math.nan
            mine, theirs = (_units(data.units, x, subset, c.metric, model) for x in (r["run_id"], b))
            t = paired_units(mine, theirs, alpha=ALPHA, n_perm=n_perm, seed=seed)
            rel = t.relative_pct() if c.ratio_scale else math.nan
            row.update({f"{c.key}_rel": rel, f"{c.key}_delta": t.delta, f"{c.key}_lo": t.lo, f"{c.key}_hi": t.hi,
                        f"{c.key}_p": t.p, f"{c.key}_pairs": t.n, f"{c.key}_sig": t.significant})
            stats.append({"subset": subset, "checkpoint": r["checkpoint"], "lora_scale": r["lora_scale"],
                          "ip_scale": r["ip_scale"], "preset": r["preset"], "run_id": r["run_id"],
                          "baseline_run": b, "metric": c.metric, "column": c.title, "model": model,
                          "protocol": data.protocol, "mean": mean, "baseline_mean": bmean,
                          "paired_mean": t.mean_run, "paired_baseline_mean": t.mean_base, "rel_change_pct": rel,
                          "delta": t.delta, "ci_lo": t.lo, "ci_hi": t.hi, "n_pairs": t.n, "p_value": t.p,
                          "test": t.method, "significant": t.significant})
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(stats)


# ------------------------------------------------------------------------------ the report
@dataclass
class Report:
    models: dict
    tables: dict = field(default_factory=dict)      # subset -> table
    stats: pd.DataFrame | None = None
    fronts: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)
    figure_message: str = ""
    protocol: str = "corrected"


def _write(path: Path, text: str | bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _csv(df: pd.DataFrame, path: Path) -> Path:
    return _write(path, df.to_csv(index=False))


def make_report(store_path, out_dir, *, runs: Sequence[str] | None = None, baseline_preset: str = "baseline",
                id_backend: str | None = None, n_perm: int = 20000, seed: int = 0, figures: bool = True,
                formats: Sequence[str] = ("png", "svg"), echo: Callable[[str], None] = print,
                protocol: str | None = None) -> Report:
    """Write report.md, tables.tex, CSVs and figures to ``out_dir``; returns what was made.
    ``protocol``: which metric rows to read (default: the only protocol the store's rows have)."""
    data = load_report_data(store_path, runs, protocol)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data.runs.empty:
        raise ValueError(f"store {store_path}: no runs to report")
    proto = data.protocol
    models = choose_models(data.summary, id_backend)
    titles = {c.key: c.title for c in COLUMNS}
    base = baselines(data, baseline_preset)
    rep = Report(models=models, protocol=proto)
    stats = []
    for tkey, subset, caption in SUBSETS:
        table, st = build_table(data, subset, models, base, n_perm=n_perm, seed=seed)
        rep.tables[subset] = table
        stats.append(st)
        rep.files.append(_csv(table, out / f"{tkey}_{subset}.csv"))
    rep.stats = pd.concat([s for s in stats if not s.empty], ignore_index=True) if any(
        not s.empty for s in stats) else pd.DataFrame()
    rep.fronts = fronts_table(rep.tables["joint"])
    rep.files += [_csv(rep.stats, out / "paired_stats.csv"), _csv(rep.fronts, out / "fronts.csv"),
                  _csv(data.summary, out / "metric_summary.csv")]

    figure_lines = []
    if figures and not rep.fronts.empty:
        from workbench.data.export import ExportUnavailable, browser_path, export_figure

        if browser_path() is None:
            rep.figure_message = ("figures skipped: static export needs Chromium (Debian: apt-get install -y "
                                  "chromium, or set BROWSER_PATH); the fronts are in fronts.csv and report.md")
        else:
            try:
                for name, fig in front_figures(rep.fronts, titles, proto):
                    prov = {"store": data.store, "run_ids": sorted(rep.fronts["run_id"].unique().tolist()),
                            "query": "report_metric_summary", "params": {"runs": ",".join(runs or [])},
                            "protocol": proto, "models": models}
                    paths = export_figure(fig, out / "figures", name, prov, formats=tuple(formats))
                    rep.files += list(paths.values())
                    figure_lines.append(f"![{name}](figures/{paths[formats[0]].name})")
            except ExportUnavailable as e:
                rep.figure_message = f"figures skipped: {e}"
    elif not figures:
        rep.figure_message = "figures skipped (--no-figures)"
    if rep.figure_message:
        echo(rep.figure_message)

    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    ignored = ", ".join(f"{n} of protocol {k}" if k != "untagged" else f"{n} without a protocol tag (written by "
                        "`fastface capture` or before protocols existed)" for k, n in sorted(data.ignored.items()))
    md = ["# FastFace evaluation report",
          "",
          f"**Evaluation protocol: {proto}** — {PROTOCOL_TEXT[proto]}. Every number below comes from metric rows "
          f"tagged `#protocol={proto}`; the choices are listed in fastface/evaluation/README.md (\"Protocols\").",
          "",
          f"Store `{data.store}`, {len(data.runs)} run(s), generated {created} by `fastface report --protocol {proto}`."
          + (f" Metric rows left out: {ignored}." if ignored else ""),
          "",
          "Cells: mean (change vs the baseline preset of the same checkpoint and scales, over the (identity, prompt, "
          "seed) pairs both runs have: % for ID, CLIP, FSC and face size, absolute Δ for AE and IR, which have no "
          "meaningful zero)* [n = values / ok samples; FFC = generated images without a detected face, left out of "
          "the ID mean; not evaluated = ok samples without the metric; p = the exact paired sign-flip p-value, "
          f"N pairs]. `*`: p ≤ {ALPHA:g} with at least {MIN_PAIRS} pairs (with 5 pairs the smallest possible "
          "two-sided p is 2/32 = 0.0625, so fewer pairs are never marked). N ok (failed): samples generated "
          "(failed to generate) in the subset. FSC: CLIP score of the face crop against the text before ';' of a "
          "stylistic prompt, or the whole realistic prompt.",
          "",
          "## Models", ""]
    for c in COLUMNS:
        md.append(f"- {c.title}: `{models.get(c.key) or 'not in the store'}`")
    md.append(f"- FFC: face_detected = 0 of `{models.get('ffc') or 'not in the store'}`")
    for tkey, subset, caption in SUBSETS:
        md += ["", f"## {caption}", ""]
        table = rep.tables[subset]
        md.append(markdown_table(table, models) if not table.empty else "_No samples in this subset._")
    md += ["", "## Paired differences vs the baseline preset", "",
           "Δ = run − baseline over the (identity, prompt, seed) units both runs have, with its Student-t 95% "
           f"interval; p = two-sided sign-flip permutation test (exact over all 2^n sign flips up to n = "
           f"{EXACT_MAX_N}, else {n_perm} random flips with seed {seed}, marked MC). Marked when p ≤ {ALPHA:g} "
           f"and n ≥ {MIN_PAIRS}; the mark comes from the test, the interval describes the size.", ""]
    for tkey, subset, caption in SUBSETS:
        st = rep.stats[rep.stats["subset"] == subset] if not rep.stats.empty else rep.stats
        md += [f"### {caption}", "", stats_markdown(st), ""]
    hint = fronts_hint(rep.tables["joint"], data.store, proto)
    md += ["## Fronts over IP-Adapter scales (joint set)", "", fronts_markdown(rep.fronts, titles, hint), ""]
    md += figure_lines
    if rep.figure_message:
        md += ["", f"_{rep.figure_message}_"]
    rep.files.append(_write(out / "report.md", "\n".join(md) + "\n"))
    tex = [latex_table(rep.tables[subset], models, caption, f"tab:{tkey}", proto) for tkey, subset, caption in SUBSETS
           if not rep.tables[subset].empty]
    rep.files.append(_write(out / "tables.tex", f"% needs \\usepackage{{booktabs}}; evaluation protocol: {proto}\n"
                            + "\n\n".join(tex) + "\n"))
    meta = {"store": data.store, "protocol": proto, "runs": data.runs["run_id"].tolist(), "models": models,
            "ignored_metric_rows": data.ignored, "baseline_preset": baseline_preset, "baselines": base,
            "test": {"method": "paired sign-flip", "exact_max_n": EXACT_MAX_N, "n_perm": n_perm, "seed": seed,
                     "alpha": ALPHA, "min_pairs": MIN_PAIRS, "interval": "Student-t 95%"},
            "created_at": created, "files": sorted(p.name for p in rep.files)}
    rep.files.append(_write(out / "report.json", json.dumps(meta, indent=2, default=str)))
    return rep
