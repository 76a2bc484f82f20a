"""Formatting of ``fastface report``: the columns, cells, Markdown and LaTeX tables, the
paired-statistics and fronts sections (pure functions over the tables of
:mod:`fastface.evaluation.report`).

A metric cell is ``mean (change)* [n=values/ok samples, FFC=k, not evaluated=m; p=P, N pairs]``:
the change is relative to the baseline run over the pairs both runs have (in %, its sign is the
paired difference's) for metrics with a meaningful zero, and the absolute paired difference
``(Δ +0.123)`` for ImageReward and the aesthetic score (no meaningful zero: a percentage of a
baseline near 0 is meaningless).  ``*`` = exact sign-flip p <= 0.05 with at least
:data:`fastface.evaluation.stats.MIN_PAIRS` pairs; p and the pairs are shown with every comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from fastface.evaluation.stats import ALPHA, MIN_PAIRS

PROTOCOL_TEXT = {
    "release": "the authors' released evaluation reproduced, quirks included (faces[0] of several faces, the "
               "release's face size, FSC from 0..255 pixels fed to CLIP as if in [-1, 1], the "
               "ava+logos-l14-linearMSE aesthetic head, raw CLIP cosine)",
    "corrected": "the release's errors fixed (largest face, clipped face size, FSC with correctly scaled pixels, "
                 "LAION's sac+logos+ava1 aesthetic head, CLIPScore's max(cos, 0))",
}

PRESET_ORDER = ("baseline", "dcg", "am1", "am1-text", "am2", "ff-am1", "ff-am1-text", "ff-am2")


@dataclass(frozen=True)
class Column:
    key: str
    metric: str
    title: str
    digits: int = 3
    subsets: tuple[str, ...] = ("joint", "stylistic", "realistic")
    ratio_scale: bool = True  # a meaningful zero: relative changes in %; else absolute differences


COLUMNS = (
    Column("id", "id_sim", "ID"),
    Column("id2", "id_sim", "ID (dlib)"),
    Column("clip", "clip_t", "CLIP"),
    Column("ae", "aesthetic", "AE", ratio_scale=False),
    Column("ir", "image_reward", "IR", ratio_scale=False),
    Column("fsc", "fsc", "FSC"),  # every prompt (the text before ';', else the whole prompt), both protocols
    Column("face_size", "face_size", "Face size"),
)


def preset_rank(p) -> tuple:
    p = p if isinstance(p, str) else ""
    return (PRESET_ORDER.index(p) if p in PRESET_ORDER else len(PRESET_ORDER), p)


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v, digits=3) -> str:
    return "—" if _nan(v) else f"{v:.{digits}f}"


def txt(v) -> str:
    return "—" if _nan(v) else str(v)


def scale(v) -> str:
    return "—" if _nan(v) else f"{float(v):g}"


def change_text(c: Column, rel, delta, *, latex: bool = False) -> str:
    pct = "\\%" if latex else "%"
    if c.ratio_scale:
        return "" if _nan(rel) else f"{rel:+.1f}{pct}"
    return "" if _nan(delta) else f"Δ {delta:+.3f}"


def cell_text(row: dict, c: Column, *, latex: bool = False) -> str:
    mean, n = row.get(f"{c.key}_mean", math.nan), row.get(f"{c.key}_n", 0)
    n_rows, n_ok = row.get(f"{c.key}_n_rows", 0), row.get(f"{c.key}_n_ok", 0)
    text = fmt(mean, c.digits)
    change = change_text(c, row.get(f"{c.key}_rel", math.nan), row.get(f"{c.key}_delta", math.nan), latex=latex)
    if change:
        text += f" ({change})"
    if row.get(f"{c.key}_sig"):
        text += "$^*$" if latex else "*"
    bits = [f"n={n}/{n_ok}"]
    ffc_key = {"id": "ffc", "id2": "ffc2"}.get(c.key)
    if ffc_key is not None:
        ffc = row.get(ffc_key)
        bits.append(f"FFC={'—' if _nan(ffc) else int(ffc)}")
    if n_ok - n_rows > 0:
        bits.append(f"not evaluated={n_ok - n_rows}")
    out = ", ".join(bits)
    pairs, p = int(row.get(f"{c.key}_pairs", 0) or 0), row.get(f"{c.key}_p", math.nan)
    if pairs and not _nan(p):
        out += f"; p={p:.3f}, {pairs} pair{'s' if pairs != 1 else ''}"
    return f"{text} [{out}]"


def present(table: pd.DataFrame, models: dict) -> list[Column]:
    return [c for c in COLUMNS if models.get(c.key) and f"{c.key}_mean" in table]


def markdown_table(table: pd.DataFrame, models: dict) -> str:
    cols = present(table, models)
    head = ["Checkpoint", "LoRA", "λ", "Preset", "N ok (failed)"] + [c.title for c in cols] + ["FFC", "Run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        row = r.to_dict()
        ffc = "—" if _nan(row.get("ffc")) else f"{int(row['ffc'])}/{row['ffc_n']}"
        vals = [txt(row["checkpoint"]), scale(row["lora_scale"]), scale(row["ip_scale"]), txt(row["preset"]),
                f"{row['n_ok']} ({row['n_failed']})"] + [cell_text(row, c) for c in cols] + [ffc, f"`{row['run_id']}`"]
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |")
    return "\n".join(lines)


def tex(s: str) -> str:
    out = str(s)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("λ", r"$\lambda$"), ("—", "--"), ("Δ", r"$\Delta$")):
        out = out.replace(a, b)
    return out


def latex_table(table: pd.DataFrame, models: dict, caption: str, label: str, protocol: str) -> str:
    cols = present(table, models)
    head = ["Checkpoint", "LoRA", r"$\lambda$", "Preset", "N ok (failed)"] + [tex(c.title) for c in cols] + ["FFC"]
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
        ffc = "--" if _nan(row.get("ffc")) else f"{int(row['ffc'])}/{row['ffc_n']}"
        cells = [tex(txt(row["checkpoint"])), scale(row["lora_scale"]), scale(row["ip_scale"]), tex(txt(row["preset"])),
                 f"{row['n_ok']} ({row['n_failed']})"]
        for c in cols:
            t = cell_text(row, c, latex=True)
            main, _, rest = t.partition(" [")
            main = main.replace("—", "--").replace("Δ", r"$\Delta$")
            cells.append(f"{main} {{\\tiny [{tex(rest[:-1])}]}}" if rest else main)
        cells.append(ffc)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              r"\caption{" + tex(caption) + f" (evaluation protocol: {protocol})" + r". Cells: mean (change vs the "
              r"baseline preset of the same checkpoint and scales over the pairs both runs have: \% for ID, CLIP, "
              r"FSC and face size, absolute $\Delta$ for AE and IR)$^*$ [n = values / ok samples; FFC = generated "
              r"images without a detected face; not evaluated = ok samples without the metric; p = exact paired "
              r"sign-flip p-value over the pairs]. $^*$: p $\le$ " + f"{ALPHA:g}" + r" with at least "
              + str(MIN_PAIRS) + r" pairs.}",
              r"\label{" + label + "}", r"\end{table}"]
    return "\n".join(lines)


def verdict(r) -> str:
    if r.n_pairs == 0:
        return "no pairs"
    if r.n_pairs < MIN_PAIRS:
        return f"cannot be marked (n < {MIN_PAIRS})"
    return f"yes (p ≤ {ALPHA:g})" if r.significant else "no"


def stats_markdown(stats: pd.DataFrame) -> str:
    if stats.empty:
        return "_No run has a baseline run (same checkpoint and scales, baseline preset) to compare with._"
    head = ["Checkpoint", "LoRA", "λ", "Preset", "Metric", "Δ vs baseline [95% t-interval]", "pairs", "p (sign-flip)",
            "change", "marked?", "Run", "Baseline run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cols = {c.title: c for c in COLUMNS}
    for r in stats.itertuples(index=False):
        if math.isnan(r.delta):
            ci = "—"
        elif math.isnan(r.ci_lo):
            ci = f"{r.delta:+.4f}"
        else:
            ci = f"{r.delta:+.4f} [{r.ci_lo:+.4f}, {r.ci_hi:+.4f}]"
        p = "—" if _nan(r.p_value) else f"{r.p_value:.4f}" + (" (MC)" if r.test == "monte-carlo" else "")
        change = change_text(cols[r.column], r.rel_change_pct, r.delta) or "—"
        lines.append("| " + " | ".join([txt(r.checkpoint), scale(r.lora_scale), scale(r.ip_scale), txt(r.preset),
                                         r.column, ci, str(r.n_pairs), p, change, verdict(r), f"`{r.run_id}`",
                                         f"`{r.baseline_run}`"]) + " |")
    return "\n".join(lines)


def fronts_markdown(fronts: pd.DataFrame, titles: dict, hint: str) -> str:
    if fronts.empty:
        return f"_{hint}_"
    out = []
    for (ck, lora, xk), g in fronts.groupby(["checkpoint", fronts["lora_scale"].fillna(-1.0), "x_metric"], sort=True):
        lora_txt = "" if lora == -1.0 else f", LoRA {lora:g}"
        out.append(f"**{ck}{lora_txt}: {titles['id']} vs {titles[xk]}**\n")
        out.append(f"| Preset | λ | {titles[xk]} | {titles['id']} | n ({titles[xk]} / ID) | Pareto-optimal |")
        out.append("|---|---|---|---|---|---|")
        g = g.assign(_p=g["preset"].map(preset_rank)).sort_values(["_p", "ip_scale"])
        for r in g.itertuples(index=False):
            out.append(f"| {txt(r.preset)} | {scale(r.ip_scale)} | {fmt(r.x)} | {fmt(r.id)} | {r.n_x} / {r.n_id} | "
                       f"{'yes' if r.pareto else ''} |")
        if g.groupby("preset")["ip_scale"].nunique().max() < 2:
            out.append("\n_Each preset has a single IP-Adapter scale here: sweep `--ip-scales` to draw a front._")
        out.append("")
    return "\n".join(out)


def fronts_hint(joint: pd.DataFrame, store: str, protocol: str) -> str:
    """Why there is no front, and what to do: the metrics to evaluate, or that no face was detected."""
    if joint.empty:
        return "No samples in these runs."
    rows = {k: int(joint[f"{k}_n_rows"].sum()) if f"{k}_n_rows" in joint else 0 for k in ("id", "clip", "ae", "ir")}
    values = {k: int(joint[f"{k}_n"].sum()) if f"{k}_n" in joint else 0 for k in ("id", "clip", "ae", "ir")}
    no_x = all(rows[k] == 0 for k in ("clip", "ae", "ir"))
    if rows["id"] == 0 or no_x:
        need = [k for k in ("id", "clip", "ae", "ir") if rows[k] == 0 and (k == "id" or no_x)]
        return (f"No run has both an ID similarity and a CLIP / AE / IR score under the {protocol} protocol: run "
                f"`fastface evaluate --store {store} --protocol {protocol} --metrics {','.join(need)}` first.")
    if values["id"] == 0:
        n = int(joint["ffc"].fillna(0).sum()) if "ffc" in joint else 0
        return (f"No front: the runs have no detected faces (every ID value is undefined; FFC = {n} of "
                f"{int(joint['n_ok'].sum())} ok samples), so there is no ID similarity to plot.")
    return "No run has both an ID similarity value and a CLIP / AE / IR value."
