"""One publication template for every chart of the workbench.

Fonts, sizes and colours live here, nowhere else.  A preset has the same colour in
every chart (``preset_color``): the known FastFace presets have fixed colours, any
other preset name gets a colour from a spare palette chosen by a stable hash of the
name (never by the order in which runs happen to be listed).
"""

from __future__ import annotations

import hashlib
import re

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


# ---------------------------------------------------------------- print (paper) layout
#: journal column widths: single column ~3.5 in, double column ~7.2 in (89 / 183 mm)
COLUMN_MM = {"single": 89.0, "double": 183.0}
CSS_DPI = 96           # plotly/kaleido sizes are CSS pixels: 96 per inch (72 pt)
PRINT_DPI = 300        # default PNG resolution of an export
PRINT_FONT_PT = 8      # body text (axis titles, ticks) in print
PRINT_TITLE_PT = 9
PRINT_LEGEND_PT = 7.5
LEGEND_PLACES = ("below", "inside")
PRINT_PAD = 8          # px of white around everything (the title never touches the edge)
LEGEND_ROW_EM = 2.0   # height of a legend row in em of the legend font (symbol and gap)
TITLE_LINE_EM = 1.35   # height of a line of the title in em of the title font
CHAR_EM = 0.62         # mean width of a character of FONT_FAMILY in em (to wrap titles to a width)


def pt_px(pt: float) -> float:
    """A font size in points as CSS pixels (what plotly's font sizes are)."""
    return pt * CSS_DPI / 72.0


def column_px(column: str) -> int:
    """Width in CSS pixels of a figure that fills a journal column ('single' or 'double')."""
    if column not in COLUMN_MM:
        raise ValueError(f"column must be one of {tuple(COLUMN_MM)}, not {column!r}")
    return int(round(COLUMN_MM[column] / 25.4 * CSS_DPI))


def png_scale(dpi: float) -> float:
    """kaleido's scale that writes a PNG at ``dpi`` (pixels per printed inch)."""
    return float(dpi) / CSS_DPI


def _legend_entries(fig: go.Figure) -> list[str]:
    """Names of the legend's entries: one per trace not hidden from it (a legend group lists each
    of its traces)."""
    return [str(t.name) for t in fig.data if t.showlegend is not False and t.name]


def shows_legend(fig: go.Figure) -> bool:
    if fig.layout.showlegend is False:
        return False
    n = len(_legend_entries(fig))
    return n > 1 or (n == 1 and fig.layout.showlegend is True)


LEGEND_SYMBOL_PX = 44  # a legend entry's symbol and gaps, beside its text


def legend_entry_px(fig: go.Figure) -> float:
    """Text width of the widest legend label in print (CHAR_EM per character): every entry of
    a legend below the plot gets this width, so entries line up in columns."""
    entries = _legend_entries(fig)
    return max((CHAR_EM * pt_px(PRINT_LEGEND_PT) * len(n) for n in entries), default=0.0)


def legend_rows(fig: go.Figure, width_px: float) -> int:
    """Rows of the horizontal legend of ``fig`` in ``width_px``: as many columns of
    legend_entry_px + LEGEND_SYMBOL_PX as fit in the width (at least one)."""
    entries = _legend_entries(fig)
    if not entries:
        return 0
    per_row = max(1, int((width_px - 2 * PRINT_PAD) // (legend_entry_px(fig) + LEGEND_SYMBOL_PX)))
    return -(-len(entries) // per_row)


def category_rows(fig: go.Figure) -> int:
    """Number of categories on a categorical y axis (per-run charts: one row per run), else 0."""
    if fig.layout.yaxis.type != "category":
        return 0
    cats = set()
    for t in fig.data:
        y = getattr(t, "y", None)
        if y is not None:
            cats.update(str(v) for v in y)
    return len(cats)


_RUN_ID_PART = re.compile(r" \([^()\s]+\)")


def short_run_names(fig: go.Figure) -> None:
    """Legend names without the '(run_id)' of run_label when the names stay as distinct as
    before (a run id takes half a printed column)."""
    names = [t.name for t in fig.data if t.name]
    short = {n: _RUN_ID_PART.sub("", n) for n in names}
    if len(set(short.values())) == len(set(names)):
        for t in fig.data:
            if t.name:
                t.name = short[t.name]


def short_run_ticks(fig: go.Figure) -> None:
    """On a per-run axis (two-line 'preset λ=..<br>run_id' categories, run_tick), show only the
    first line when it alone tells the runs apart (a run id takes half a printed column)."""
    if fig.layout.yaxis.type != "category":
        return
    cats = list(dict.fromkeys(str(v) for t in fig.data if getattr(t, "y", None) is not None for v in t.y))
    heads = [c.split("<br>")[0] for c in cats]
    if cats and any("<br>" in c for c in cats) and len(set(heads)) == len(heads):
        fig.update_yaxes(tickmode="array", tickvals=cats, ticktext=heads)


def _top_annotation_px(fig: go.Figure, body: float) -> float:
    """Room for annotations above the plot (facet titles) between the title and the plot."""
    top = [a for a in fig.layout.annotations or () if (a.yref or "paper") == "paper" and (a.y or 0) >= 1]
    return 1.6 * body if top else 0.0


def subplot_rows(fig: go.Figure) -> int:
    """Rows of a subplot grid: the distinct vertical domains of its y axes (1 for a single plot)."""
    domains = {tuple(round(v, 4) for v in ax.domain) for name in fig.layout
               if name.startswith("yaxis") and (ax := fig.layout[name]) is not None and ax.domain}
    return max(len(domains), 1)


def paper_height(fig: go.Figure, width_px: int, legend: str = "below") -> int:
    """Export height for a column width: a 4:3 (single) or ~2:1 (double) plot area, at least one
    two-line row per run on a per-run chart, plus the legend's rows when it sits below."""
    body = pt_px(PRINT_FONT_PT)
    h = width_px * (0.75 if width_px < 500 else 0.5)
    rows = category_rows(fig)
    if rows:
        h = max(h, 90 + rows * 2.6 * body)
    grid_rows = subplot_rows(fig)
    if grid_rows > 1:  # a grid of panels: each row a readable panel (its title, plot and ticks)
        h = max(h, 70 + grid_rows * 12 * body)
    if legend == "below" and shows_legend(fig):
        legend_h = legend_rows(fig, width_px) * LEGEND_ROW_EM * pt_px(PRINT_LEGEND_PT) + 16
        # plotly does not let margins take most of the figure: a tall legend gets a taller plot
        h = max(h, 1.2 * legend_h) + legend_h
    return int(round(h))


def paper(fig: go.Figure, width_px: int, height_px: int | None = None, legend: str = "below") -> go.Figure:
    """Lay fig out for print, in place: fonts in points for a figure printed at ``width_px`` CSS
    pixels (PRINT_*_PT), the title wrapped to the width and aligned with the plot (never at the
    paper's edge), PRINT_PAD of white on every side, and the legend below the plot (horizontal,
    rows as needed; its height is added to the figure's) or inside the plot's top right corner
    (``legend='inside'``): never a column beside the plot that takes half the width."""
    if legend not in LEGEND_PLACES:
        raise ValueError(f"legend must be one of {LEGEND_PLACES}, not {legend!r}")
    apply(fig)
    short_run_ticks(fig)
    short_run_names(fig)
    body, title_px, legend_px = pt_px(PRINT_FONT_PT), pt_px(PRINT_TITLE_PT), pt_px(PRINT_LEGEND_PT)
    fig.update_layout(width=int(width_px), font=dict(size=body),
                      margin=dict(l=PRINT_PAD, r=PRINT_PAD + 4, t=PRINT_PAD, b=PRINT_PAD, autoexpand=True))
    title = fig.layout.title.text if fig.layout.title and fig.layout.title.text else None
    if title:
        room = width_px - 2 * PRINT_PAD - 4
        text = wrap(str(title).replace("<br>", " "), max(16, int(room / (CHAR_EM * title_px))))
        sub = fig.layout.title.subtitle.text if fig.layout.title.subtitle else None
        if sub:  # one block of text above the plot (plotly puts a subtitle into a paper-anchored plot)
            sub_px = body * 0.92
            lines = wrap(str(sub).replace("<br>", " "), max(16, int(room / (CHAR_EM * sub_px)))).split("<br>")
            text += "".join(f"<br><span style='font-size:{sub_px:.1f}px;color:#444444'>{line}</span>"
                            for line in lines)
        # anchored to the top of the figure, PRINT_PAD from its left and top edges (plotly sets a
        # multi-line title up to ~0.8 em higher than its anchor, hence the extra); the top margin holds
        # its lines and a gap above the plot (and its facet titles). Plotly's title automargin and
        # a title anchored to the plot left titles cut at the edge or over the plot.
        lines = text.count("<br>") + 1
        gap = 6 + _top_annotation_px(fig, body)
        top = PRINT_PAD + 0.8 * title_px * (lines > 1)
        if not height_px:  # the plot keeps its proportions: the title's extra lines and the legend add height
            height_px = paper_height(fig, width_px, legend) + int(round(1.4 * body * (lines - 1)))
        fig.update_layout(title=dict(text=text, subtitle=dict(text=None), font=dict(size=title_px), x=0,
                                     xref="container", xanchor="left", y=1 - top / height_px, yref="container",
                                     yanchor="top", pad=dict(t=0, l=PRINT_PAD, b=0), automargin=False),
                          margin=dict(t=int(round(top + lines * TITLE_LINE_EM * title_px + gap))))
    if not height_px:
        height_px = paper_height(fig, width_px, legend)
    fig.update_layout(height=int(height_px))
    fig.update_xaxes(tickfont=dict(size=body * 0.92), title=dict(font=dict(size=body), standoff=4), automargin=True)
    n_cols = sum(1 for k in fig.layout if k.startswith("xaxis"))  # x axes side by side (facets)
    chars = max(12, int((width_px - 80) / max(n_cols, 1) / (CHAR_EM * body)))
    fig.for_each_xaxis(lambda ax: ax.update(title_text=wrap(ax.title.text.replace("<br>", " "), chars))
                       if ax.title and ax.title.text else None)
    fig.update_yaxes(tickfont=dict(size=body * 0.92), title=dict(font=dict(size=body), standoff=4), automargin=True)
    fig.update_annotations(font_size=body)  # facet titles
    for t in fig.data:  # bar labels and other text marks
        if getattr(t, "text", None) is not None and hasattr(t, "textfont"):
            t.textfont.size = body * 0.92
    if shows_legend(fig):
        if legend == "below":
            fig.update_layout(legend=dict(orientation="h", x=PRINT_PAD / width_px, xref="container", xanchor="left", y=0,
                                          yref="container", yanchor="bottom", font=dict(size=legend_px),
                                          itemwidth=30, tracegroupgap=0, bgcolor="rgba(255,255,255,0)",
                                          entrywidthmode="pixels", entrywidth=legend_entry_px(fig) + 4,
                                          title=dict(text="")))
        else:
            fig.update_layout(legend=dict(orientation="v", x=0.99, xref="paper", xanchor="right", y=0.99,
                                          yref="paper", yanchor="top", font=dict(size=legend_px),
                                          bgcolor="rgba(255,255,255,0.85)", bordercolor="#BBBBBB", borderwidth=0.5,
                                          title=dict(text="")))
    fig.update_coloraxes(colorbar=dict(thickness=8, tickfont=dict(size=body * 0.9)))
    return fig


def apply(fig: go.Figure, title: str | None = None) -> go.Figure:
    """Apply the workbench template (and a title) to a figure, in place; returns it."""
    fig.update_layout(template=TEMPLATE_NAME)
    if title is not None:
        fig.update_layout(title=dict(text=title))
    return fig
