"""One publication template for every chart of the workbench.

Fonts, sizes and colours live here, nowhere else.  A preset has the same colour in
every chart (``preset_color``): the known FastFace presets have fixed colours, any
other preset name gets a colour from a spare palette chosen by a stable hash of the
name (never by the order in which runs happen to be listed).
"""

from __future__ import annotations

import hashlib

import plotly.graph_objects as go
import plotly.io as pio

FONT_FAMILY = "DejaVu Sans, Arial, Helvetica, sans-serif"
FONT_SIZE = 13
TITLE_SIZE = 15
WIDTH = 720       # export size in CSS pixels (PNG is written at EXPORT_SCALE x)
HEIGHT = 440
EXPORT_SCALE = 2
TEMPLATE_NAME = "fastface"

#: fixed colours of the presets shipped in fastface/method/presets (colour-blind safe, Okabe-Ito + extra)
PRESET_COLORS: dict[str, str] = {
    "baseline": "#7f7f7f",
    "dcg": "#0072B2",
    "am1": "#E69F00",
    "am1-text": "#F0C36B",
    "am2": "#009E73",
    "ff-am1": "#D55E00",
    "ff-am1-text": "#F4A582",
    "ff-am2": "#CC79A7",
}
#: colours for presets not listed above (chosen by a stable hash of the name)
SPARE_COLORS = ("#56B4E9", "#8C564B", "#17BECF", "#BCBD22", "#393B79", "#AD494A", "#637939",
                "#7B4173")
UNKNOWN_PRESET = "(no preset)"

STAGE_DASH = {"pre": "dot", "post": "solid"}
#: marker symbols that tell apart runs of the same preset (by ip_scale order within the preset)
RUN_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "pentagon")
SEQUENTIAL = "Viridis"
ATTENTION_SCALE = "Inferno"
FACE_BOX_COLOR = "#00FF66"


def preset_color(preset: str | None) -> str:
    """The colour of a preset, the same in every chart and every session."""
    name = preset or UNKNOWN_PRESET
    if name in PRESET_COLORS:
        return PRESET_COLORS[name]
    digest = hashlib.sha1(name.encode("utf-8")).digest()
    return SPARE_COLORS[digest[0] % len(SPARE_COLORS)]


def run_order(run_id: str, preset: str | None, ip_scale: float | None) -> tuple:
    """Sort key of runs in per-run charts: presets in the paper's order (PRESET_COLORS: baseline,
    dcg, am1, ..., ff-am2; other names after them, alphabetically), then ip_scale, run id."""
    known = list(PRESET_COLORS)
    name = preset or UNKNOWN_PRESET
    rank = known.index(name) if name in known else len(known)
    return (rank, name, float("inf") if ip_scale is None else float(ip_scale), run_id)


def run_symbols(runs: list[tuple[str, str | None, float | None]]) -> dict[str, str]:
    """run_id -> marker symbol: within each preset, runs ordered by (ip_scale, run_id) get
    RUN_SYMBOLS in turn, so two runs of one preset (same colour) still look different."""
    by_preset: dict[str, list[tuple[float, str]]] = {}
    for run_id, preset, ip in runs:
        by_preset.setdefault(preset or UNKNOWN_PRESET, []).append((float("inf") if ip is None else ip, run_id))
    out = {}
    for members in by_preset.values():
        for i, (_, run_id) in enumerate(sorted(members)):
            out[run_id] = RUN_SYMBOLS[i % len(RUN_SYMBOLS)]
    return out


def run_label(run_id: str, preset: str | None = None, ip_scale: float | None = None,
              varied: str | None = None) -> str:
    """Short legend label of a run: 'preset λ=0.8 (run_id)'; a grid cell's coordinates after the
    preset: 'ff-am1 [am.am1.scale_up=1.2] λ=0.8 (run_id)' ('[base]': the grid's unchanged preset)."""
    parts = [preset or UNKNOWN_PRESET]
    if isinstance(varied, str):
        parts.append(f"[{varied or 'base'}]")
    if ip_scale is not None:
        parts.append(f"λ={ip_scale:g}")
    return " ".join(parts) + f" ({run_id})"


ROW_HEIGHT = 44   # px per category row of a per-run chart (two-line labels)


def run_tick(run_id: str, preset: str | None = None, ip_scale: float | None = None) -> str:
    """Two-line category label of a run for a per-run axis: 'preset λ=0.8' over the run id."""
    head = preset or UNKNOWN_PRESET
    if ip_scale is not None:
        head += f" λ={ip_scale:g}"
    return f"{head}<br>{run_id}"


def rows_height(n_rows: int, chrome: int = 150) -> int:
    """Height of a chart with one category row per run (horizontal bars, violins, forests):
    ROW_HEIGHT per row plus title and axis (at least HEIGHT), so labels never overlap."""
    return max(HEIGHT, chrome + ROW_HEIGHT * max(int(n_rows), 1))


def wrap(text: str, width: int = 32) -> str:
    """Break a long title into lines of at most ``width`` characters (at spaces; a longer word
    keeps its own line), joined with <br> as plotly wants."""
    lines: list[str] = []
    for word in str(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _template() -> go.layout.Template:
    t = go.layout.Template()
    t.layout = go.Layout(
        font=dict(family=FONT_FAMILY, size=FONT_SIZE, color="#222222"),
        title=dict(font=dict(size=TITLE_SIZE), x=0.0, xanchor="left"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(PRESET_COLORS.values()) + list(SPARE_COLORS),
        margin=dict(l=64, r=24, t=56, b=56),
        legend=dict(bgcolor="rgba(255,255,255,0.8)", borderwidth=0, font=dict(size=FONT_SIZE - 1)),
        xaxis=dict(showline=True, linecolor="#444444", ticks="outside", gridcolor="#E5E5E5",
                   zeroline=False, mirror=False, title=dict(standoff=8), automargin=True),
        yaxis=dict(showline=True, linecolor="#444444", ticks="outside", gridcolor="#E5E5E5",
                   zeroline=False, mirror=False, title=dict(standoff=8), automargin=True),
        coloraxis=dict(colorbar=dict(thickness=14, outlinewidth=0)),
        hoverlabel=dict(font=dict(family=FONT_FAMILY)),
    )
    return t


pio.templates[TEMPLATE_NAME] = _template()


def apply(fig: go.Figure, title: str | None = None) -> go.Figure:
    """Apply the workbench template (and a title) to a figure, in place; returns it."""
    fig.update_layout(template=TEMPLATE_NAME)
    if title is not None:
        fig.update_layout(title=dict(text=title))
    return fig
