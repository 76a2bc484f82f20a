"""``fastface report``: the paper's tables and the fronts over IP-Adapter scales, from a store.

Aggregation happens in SQL (``store/sql/queries/report_*.sql``, run ids bound as ``$runs``);
this module picks one model per metric, pairs runs with their baseline and formats.

Tables (METHOD.md sections 6-7): Table 1 = the joint set (every prompt), Table 2 = the
stylistic prompts, Table 3 = the realistic prompts.  One row per run, grouped by
(checkpoint, lora_scale, ip_scale); the baseline of a row is the run of the
``--baseline-preset`` (default ``baseline``) with the same checkpoint and scales (when there
are several, the one sharing the most (identity, prompt, seed) units).  Every metric cell is

    mean (relative change vs baseline %)* [n=values/ok samples, FFC=face fails, not evaluated=k]

``n`` counts the samples the mean covers (id_sim has no value where no face was found:
those are the FFC, shown in the ID cell and in its own column), ``not evaluated`` appears
when some ok samples have no row for the metric, and ``*`` marks a paired difference whose 95%
bootstrap interval excludes 0.  Samples whose generation failed are counted in the N column.

Statistics: for every run and metric, the paired difference to its baseline over the same
(identity, prompt, seed) units, with a percentile bootstrap interval
(:func:`workbench.stats.paired_bootstrap`, ``--n-boot`` resamples, seeded).

Fronts: per (checkpoint, lora_scale), ID similarity against CLIP / AE / IR, one line per preset
through its IP-Adapter scales (:func:`workbench.charts_compare.fronts`), and the Pareto-optimal
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

PRESET_ORDER = ("baseline", "dcg", "am1", "am1-text", "am2", "ff-am1", "ff-am1-text", "ff-am2")
SUBSETS = (("table1", "joint", "Table 1: joint set (all prompts)"),
           ("table2", "stylistic", "Table 2: stylistic prompts"),
           ("table3", "realistic", "Table 3: realistic prompts"))


@dataclass(frozen=True)
class Column:
    key: str
    metric: str
    title: str
    digits: int = 3
    subsets: tuple[str, ...] = ("joint", "stylistic", "realistic")


COLUMNS = (
    Column("id", "id_sim", "ID"),
    Column("id2", "id_sim", "ID (dlib)"),
    Column("clip", "clip_t", "CLIP"),
    Column("ae", "aesthetic", "AE"),
    Column("ir", "image_reward", "IR"),
    Column("fsc", "fsc", "FSC", subsets=("joint", "stylistic")),
    Column("face_size", "face_size", "Face size"),
)
FRONT_X = ("clip", "ae", "ir")


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


def load_report_data(store_path, runs: Sequence[str] | None = None) -> ReportData:
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
        return ReportData(r, run_query(con, "report_metric_summary", runs=arg),
                          run_query(con, "report_metric_units", runs=arg), str(Path(store_path).resolve()))
    finally:
        con.close()


def _preset_rank(p) -> tuple:
    p = p if isinstance(p, str) else ""
    return (PRESET_ORDER.index(p) if p in PRESET_ORDER else len(PRESET_ORDER), p)


def _group_key(row) -> tuple:
    return (row["checkpoint"] if isinstance(row["checkpoint"], str) else "",
            _num(row["lora_scale"]), _num(row["ip_scale"]))


def _num(v) -> float:
    return float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


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


def build_table(data: ReportData, subset: str, models: dict, base: dict, *, n_boot: int = 2000,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, paired stats) of one subset.  table: one row per run with, per column key c,
    c_mean, c_n, c_n_rows, c_n_ok, c_rel (%), c_delta, c_lo, c_hi, c_pairs, c_sig; ffc, ffc_n (samples
    with a face_detected row), ffc2, ffc2_n."""
    from workbench.stats import paired_bootstrap

    ok_col = {"joint": "n_ok", "realistic": "n_ok_realistic", "stylistic": "n_ok_stylistic"}[subset]
    fail_col = {"joint": "n_failed", "realistic": "n_failed_realistic", "stylistic": "n_failed_stylistic"}[subset]
    rows, stats = [], []
    for _, r in order_runs(data.runs).iterrows():
        if int(r[ok_col]) == 0 and int(r[fail_col]) == 0:
            continue
        b = base.get(r["run_id"])
        row = {"checkpoint": r["checkpoint"], "lora_scale": r["lora_scale"], "ip_scale": r["ip_scale"],
               "preset": r["preset"], "run_id": r["run_id"], "baseline_run": b, "n_ok": int(r[ok_col]),
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
                        f"{c.key}_hi": math.nan, f"{c.key}_pairs": 0, f"{c.key}_sig": False})
            if b is None or b == r["run_id"] or model is None:
                continue
            bst = _stat(data.summary, b, subset, c.metric, model)
            bmean = float(bst["mean"]) if bst and not pd.isna(bst["mean"]) else math.nan
            if not math.isnan(bmean) and bmean != 0 and not math.isnan(mean):
                row[f"{c.key}_rel"] = 100.0 * (mean - bmean) / abs(bmean)
            mine, theirs = (_units(data.units, x, subset, c.metric, model) for x in (r["run_id"], b))
            merged = mine.merge(theirs, on=["identity", "prompt", "seed"], suffixes=("", "_base"))
            delta, lo, hi, n = paired_bootstrap(merged["value"], merged["value_base"], n_boot=n_boot, seed=seed)
            sig = bool(n > 1 and not (lo <= 0.0 <= hi))
            row.update({f"{c.key}_delta": delta, f"{c.key}_lo": lo, f"{c.key}_hi": hi, f"{c.key}_pairs": n,
                        f"{c.key}_sig": sig})
            stats.append({"subset": subset, "checkpoint": r["checkpoint"], "lora_scale": r["lora_scale"],
                          "ip_scale": r["ip_scale"], "preset": r["preset"], "run_id": r["run_id"],
                          "baseline_run": b, "metric": c.metric, "column": c.title, "model": model,
                          "mean": mean, "baseline_mean": bmean, "rel_change_pct": row[f"{c.key}_rel"],
                          "delta": delta, "ci_lo": lo, "ci_hi": hi, "n_pairs": n, "significant": sig})
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(stats)


# ---------------------------------------------------------------------------------- fronts
def pareto_mask(x: Sequence[float], y: Sequence[float]) -> list[bool]:
    """Non-dominated points when maximising both x and y (NaN points are never optimal)."""
    pts = list(zip(x, y))
    out = []
    for i, (xi, yi) in enumerate(pts):
        if any(math.isnan(v) for v in (xi, yi)):
            out.append(False)
            continue
        dominated = any(j != i and not math.isnan(xj) and not math.isnan(yj) and xj >= xi and yj >= yi
                        and (xj > xi or yj > yi) for j, (xj, yj) in enumerate(pts))
        out.append(not dominated)
    return out


def fronts_table(joint: pd.DataFrame) -> pd.DataFrame:
    """Per (checkpoint, lora_scale) and x in CLIP/AE/IR: the runs' (x, ID) with Pareto flags."""
    cols = ["checkpoint", "lora_scale", "x_metric", "run_id", "preset", "ip_scale", "x", "id", "n_x", "n_id", "pareto"]
    if joint.empty or "id_mean" not in joint:
        return pd.DataFrame(columns=cols)
    rows = []
    for (ck, lora), g in joint.groupby([joint["checkpoint"].fillna(""), joint["lora_scale"].fillna(-1.0)], sort=True):
        for xk in FRONT_X:
            if f"{xk}_mean" not in g or g[f"{xk}_mean"].isna().all() or g["id_mean"].isna().all():
                continue
            flags = pareto_mask(g[f"{xk}_mean"].tolist(), g["id_mean"].tolist())
            for (_, r), p in zip(g.iterrows(), flags):
                rows.append({"checkpoint": ck, "lora_scale": None if lora == -1.0 else lora, "x_metric": xk,
                             "run_id": r["run_id"], "preset": r["preset"], "ip_scale": r["ip_scale"],
                             "x": r[f"{xk}_mean"], "id": r["id_mean"], "n_x": r[f"{xk}_n"], "n_id": r["id_n"],
                             "pareto": p})
    return pd.DataFrame(rows, columns=cols)


def front_figures(fronts: pd.DataFrame, titles: dict[str, str]) -> list[tuple[str, object]]:
    """(name, plotly figure) per (checkpoint, lora_scale, x metric)."""
    from workbench.charts_compare import fronts as fronts_chart
    from workbench.style import run_label, run_symbols

    out = []
    if fronts.empty:
        return out
    for (ck, lora, xk), g in fronts.groupby(["checkpoint", fronts["lora_scale"].fillna(-1.0), "x_metric"], sort=True):
        per_run = g.rename(columns={"x": titles[xk], "id": titles["id"]})
        syms = run_symbols([(r.run_id, r.preset, r.ip_scale) for r in g.itertuples()])
        meta = {r.run_id: {"preset": r.preset, "ip_scale": r.ip_scale, "symbol": syms[r.run_id],
                           "label": run_label(r.run_id, r.preset, r.ip_scale)} for r in g.itertuples()}
        lora_txt = "" if lora == -1.0 else f", LoRA {lora:g}"
        fig = fronts_chart(per_run, x=titles[xk], y=titles["id"], run_meta=meta,
                           title=f"{titles['id']} vs {titles[xk]} over IP-Adapter scales ({ck}{lora_txt})")
        pareto = g[g["pareto"]]
        if len(pareto):
            import plotly.graph_objects as go

            fig.add_trace(go.Scatter(x=pareto["x"], y=pareto["id"], mode="markers", name="Pareto-optimal",
                                     marker=dict(symbol="circle-open", size=17, color="#222222", line=dict(width=2)),
                                     hoverinfo="skip"))
        lora_name = "" if lora == -1.0 else f"_lora{lora:g}"
        out.append((f"front_{ck or 'unknown'}{lora_name}_{xk}", fig))
    return out


# ------------------------------------------------------------------------------ formatting
def _fmt(v, digits=3) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _txt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _scale(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):g}"


def cell_text(row: dict, c: Column, *, latex: bool = False) -> str:
    mean, n = row.get(f"{c.key}_mean", math.nan), row.get(f"{c.key}_n", 0)
    n_rows, n_ok = row.get(f"{c.key}_n_rows", 0), row.get(f"{c.key}_n_ok", 0)
    pct = r"\%" if latex else "%"
    text = _fmt(mean, c.digits)
    rel = row.get(f"{c.key}_rel", math.nan)
    if not (isinstance(rel, float) and math.isnan(rel)):
        text += f" ({rel:+.1f}{pct})"
    if row.get(f"{c.key}_sig"):
        text += "$^*$" if latex else "*"
    bits = [f"n={n}/{n_ok}"]
    ffc_key = {"id": "ffc", "id2": "ffc2"}.get(c.key)
    if ffc_key is not None:
        ffc = row.get(ffc_key)
        bits.append(f"FFC={'—' if ffc is None or pd.isna(ffc) else int(ffc)}")
    if n_ok - n_rows > 0:
        bits.append(f"not evaluated={n_ok - n_rows}")
    return f"{text} [{', '.join(bits)}]"


def _present(table: pd.DataFrame, models: dict) -> list[Column]:
    return [c for c in COLUMNS if models.get(c.key) and f"{c.key}_mean" in table]


def markdown_table(table: pd.DataFrame, models: dict) -> str:
    cols = _present(table, models)
    head = ["Checkpoint", "LoRA", "λ", "Preset", "N ok (failed)"] + [c.title for c in cols] + ["FFC", "Run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        row = r.to_dict()
        ffc = "—" if row.get("ffc") is None or pd.isna(row.get("ffc")) else f"{int(row['ffc'])}/{row['ffc_n']}"
        vals = [_txt(row["checkpoint"]), _scale(row["lora_scale"]), _scale(row["ip_scale"]), _txt(row["preset"]),
                f"{row['n_ok']} ({row['n_failed']})"] + [cell_text(row, c) for c in cols] + [ffc, f"`{row['run_id']}`"]
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |")
    return "\n".join(lines)


def _tex(s: str) -> str:
    out = str(s)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("λ", r"$\lambda$"), ("—", "--")):
        out = out.replace(a, b)
    return out


def latex_table(table: pd.DataFrame, models: dict, caption: str, label: str) -> str:
    cols = _present(table, models)
    head = ["Checkpoint", "LoRA", r"$\lambda$", "Preset", "N ok (failed)"] + [_tex(c.title) for c in cols] + ["FFC"]
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize",
             r"\begin{tabular}{" + "l" * 4 + "r" + "l" * len(cols) + "r}", r"\toprule", " & ".join(head) + r" \\",
             r"\midrule"]
    last = None
    for _, r in table.iterrows():
        row = r.to_dict()
        group = (row["checkpoint"], row["lora_scale"], row["ip_scale"])
        if last is not None and group != last:
            lines.append(r"\midrule")
        last = group
        ffc = "--" if row.get("ffc") is None or pd.isna(row.get("ffc")) else f"{int(row['ffc'])}/{row['ffc_n']}"
        cells = [_tex(_txt(row["checkpoint"])), _scale(row["lora_scale"]), _scale(row["ip_scale"]),
                 _tex(_txt(row["preset"])),
                 f"{row['n_ok']} ({row['n_failed']})"]
        for c in cols:
            t = cell_text(row, c, latex=True)
            main, _, rest = t.partition(" [")
            main = main.replace("—", "--")
            cells.append(f"{main} {{\\tiny [{_tex(rest[:-1])}]}}" if rest else main)
        cells.append(ffc)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              r"\caption{" + _tex(caption) + r". Cells: mean (relative change vs the baseline preset of the same "
              r"checkpoint and scales)$^*$ [n = values / ok samples; FFC = generated images without a detected face; "
              r"not evaluated = ok samples without the metric]. $^*$: paired 95\% bootstrap interval of the "
              r"difference excludes 0.}",
              r"\label{" + label + "}", r"\end{table}"]
    return "\n".join(lines)


def stats_markdown(stats: pd.DataFrame) -> str:
    if stats.empty:
        return "_No run has a baseline run (same checkpoint and scales, baseline preset) to compare with._"
    head = ["Checkpoint", "LoRA", "λ", "Preset", "Metric", "Δ vs baseline [95% CI]", "pairs", "rel. change",
            "real?", "Run", "Baseline run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in stats.itertuples(index=False):
        ci = "—" if math.isnan(r.delta) else f"{r.delta:+.4f} [{r.ci_lo:+.4f}, {r.ci_hi:+.4f}]"
        rel = "—" if math.isnan(r.rel_change_pct) else f"{r.rel_change_pct:+.1f}%"
        verdict = "yes" if r.significant else ("no pairs" if r.n_pairs == 0 else "not distinguishable from noise")
        lines.append("| " + " | ".join([_txt(r.checkpoint), _scale(r.lora_scale), _scale(r.ip_scale), _txt(r.preset),
                                         r.column, ci, str(r.n_pairs), rel, verdict, f"`{r.run_id}`",
                                         f"`{r.baseline_run}`"]) + " |")
    return "\n".join(lines)


def fronts_markdown(fronts: pd.DataFrame, titles: dict) -> str:
    if fronts.empty:
        return "_No run has both an ID similarity and a CLIP / AE / IR score: evaluate the runs first._"
    out = []
    for (ck, lora, xk), g in fronts.groupby(["checkpoint", fronts["lora_scale"].fillna(-1.0), "x_metric"], sort=True):
        lora_txt = "" if lora == -1.0 else f", LoRA {lora:g}"
        out.append(f"**{ck}{lora_txt}: {titles['id']} vs {titles[xk]}**\n")
        out.append(f"| Preset | λ | {titles[xk]} | {titles['id']} | n ({titles[xk]} / ID) | Pareto-optimal |")
        out.append("|---|---|---|---|---|---|")
        g = g.assign(_p=g["preset"].map(_preset_rank)).sort_values(["_p", "ip_scale"])
        for r in g.itertuples(index=False):
            out.append(f"| {_txt(r.preset)} | {_scale(r.ip_scale)} | {_fmt(r.x)} | {_fmt(r.id)} | {r.n_x} / {r.n_id} | "
                       f"{'yes' if r.pareto else ''} |")
        if g.groupby("preset")["ip_scale"].nunique().max() < 2:
            out.append("\n_Each preset has a single IP-Adapter scale here: sweep `--ip-scales` to draw a front._")
        out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------ the report
@dataclass
class Report:
    models: dict
    tables: dict = field(default_factory=dict)      # subset -> table
    stats: pd.DataFrame | None = None
    fronts: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)
    figure_message: str = ""


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
                id_backend: str | None = None, n_boot: int = 2000, seed: int = 0, figures: bool = True,
                formats: Sequence[str] = ("png", "svg"), echo: Callable[[str], None] = print) -> Report:
    """Write report.md, tables.tex, CSVs and figures to ``out_dir``; returns what was made."""
    data = load_report_data(store_path, runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data.runs.empty:
        raise ValueError(f"store {store_path}: no runs to report")
    models = choose_models(data.summary, id_backend)
    titles = {c.key: c.title for c in COLUMNS}
    base = baselines(data, baseline_preset)
    rep = Report(models=models)
    stats = []
    for tkey, subset, caption in SUBSETS:
        table, st = build_table(data, subset, models, base, n_boot=n_boot, seed=seed)
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
        from workbench.figures import ExportUnavailable, browser_path, export_figure

        if browser_path() is None:
            rep.figure_message = ("figures skipped: static export needs Chromium (Debian: apt-get install -y "
                                  "chromium, or set BROWSER_PATH); the fronts are in fronts.csv and report.md")
        else:
            try:
                for name, fig in front_figures(rep.fronts, titles):
                    prov = {"store": data.store, "run_ids": sorted(rep.fronts["run_id"].unique().tolist()),
                            "query": "report_metric_summary", "params": {"runs": ",".join(runs or [])},
                            "models": models}
                    paths = export_figure(fig, out / "figures", name, prov, formats=tuple(formats))
                    rep.files += list(paths.values())
                    figure_lines.append(f"![{name}](figures/{paths[formats[0]].name})")
            except ExportUnavailable as e:
                rep.figure_message = f"figures skipped: {e}"
    elif not figures:
        rep.figure_message = "figures skipped (--no-figures)"
    if rep.figure_message:
        echo(rep.figure_message)

    md = ["# FastFace evaluation report",
          "",
          f"Store `{data.store}`, {len(data.runs)} run(s), generated "
          f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by `fastface report`.",
          "",
          "Cells: mean (relative change vs the baseline preset of the same checkpoint and scales)* "
          "[n = values / ok samples; FFC = generated images without a detected face, left out of the ID "
          "mean; not evaluated = ok samples without the metric]. `*`: the paired 95% bootstrap interval "
          f"of the difference ({n_boot} resamples over the same identity, prompt and seed) excludes 0. "
          "N ok (failed): samples generated (failed to generate) in the subset.",
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
           "Δ = run − baseline over the (identity, prompt, seed) units both runs have; 95% percentile "
           f"bootstrap interval ({n_boot} resamples, seed {seed}). \"real?\" = the interval excludes 0.", ""]
    for tkey, subset, caption in SUBSETS:
        st = rep.stats[rep.stats["subset"] == subset] if not rep.stats.empty else rep.stats
        md += [f"### {caption}", "", stats_markdown(st), ""]
    md += ["## Fronts over IP-Adapter scales (joint set)", "", fronts_markdown(rep.fronts, titles), ""]
    md += figure_lines
    if rep.figure_message:
        md += ["", f"_{rep.figure_message}_"]
    rep.files.append(_write(out / "report.md", "\n".join(md) + "\n"))
    tex = [latex_table(rep.tables[subset], models, caption, f"tab:{tkey}") for tkey, subset, caption in SUBSETS
           if not rep.tables[subset].empty]
    rep.files.append(_write(out / "tables.tex", "% needs \\usepackage{booktabs}\n" + "\n\n".join(tex) + "\n"))
    meta = {"store": data.store, "runs": data.runs["run_id"].tolist(), "models": models,
            "baseline_preset": baseline_preset, "baselines": base, "n_boot": n_boot, "seed": seed,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "files": sorted(p.name for p in rep.files)}
    rep.files.append(_write(out / "report.json", json.dumps(meta, indent=2, default=str)))
    return rep
