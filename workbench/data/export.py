"""Figure export (PNG, SVG, PDF with kaleido v1 + Debian's chromium) with a JSON sidecar, and
the registry of the charts shown in this session (every page shows its charts through
``show`` so the Figures page can export any of them).

Export needs a Chrome/Chromium binary: kaleido finds it on PATH (``chromium``) or through the
``BROWSER_PATH`` environment variable.  Without one, ``export_figure`` raises
``ExportUnavailable`` with a message that says what to install.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import re
import shutil
import threading
from pathlib import Path

import plotly.graph_objects as go

from workbench.charts import style

FORMATS = ("png", "svg", "pdf")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_SERVER_LOCK = threading.Lock()
_server_started = False


class ExportUnavailable(RuntimeError):
    """Static export is not possible here (no Chromium); the message says what to do."""


def browser_path() -> str | None:
    """The browser kaleido will use: $BROWSER_PATH, else the first of BROWSER_NAMES on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in BROWSER_NAMES:
        p = shutil.which(name)
        if p:
            return p
    return None


def safe_name(name: str) -> str:
    """A file-name-safe stem for a figure title."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return (s or "figure")[:80]


def publication_figure(fig: go.Figure, width: int | None = None, height: int | None = None, *,
                       column: str | None = None, legend: str = "below") -> go.Figure:
    """A copy of fig in the publication template at the export size.  With ``column`` ('single'
    or 'double'), laid out for a journal column (style.paper: print font sizes, legend below or
    inside, padded title, width style.column_px(column))."""
    out = go.Figure(fig)
    if column is not None:
        return style.paper(out, width or style.column_px(column), height, legend=legend)
    style.apply(out)
    out.update_layout(width=width or fig.layout.width or style.WIDTH,
                      height=height or fig.layout.height or style.HEIGHT)
    return out


def _ensure_server() -> None:
    global _server_started
    import kaleido

    with _SERVER_LOCK:
        if not _server_started:
            kaleido.start_sync_server(n=1, timeout=90, silence_warnings=True)
            _server_started = True
            atexit.register(shutdown)


def shutdown() -> None:
    """Stop kaleido's browser (also run at interpreter exit)."""
    global _server_started
    with _SERVER_LOCK:
        if _server_started:
            import kaleido

            try:
                kaleido.stop_sync_server(silence_warnings=True)
            except Exception:  # noqa: BLE001 the browser may already be gone at exit
                pass
            finally:
                _server_started = False


def render(fig: go.Figure, fmt: str, *, width: int | None = None, height: int | None = None,
           scale: float | None = None) -> bytes:
    """Bytes of one static image of fig (kaleido)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    if browser_path() is None:
        raise ExportUnavailable(
            "Static export needs Chromium, which was not found (looked for $BROWSER_PATH and "
            f"{', '.join(BROWSER_NAMES)} on PATH). Install it with `apt-get install -y chromium` "
            "(Debian) and restart the workbench.")
    import kaleido

    pub = publication_figure(fig, width, height)
    opts = {"format": fmt, "width": pub.layout.width, "height": pub.layout.height,
            "scale": scale if scale is not None else (style.EXPORT_SCALE if fmt == "png" else 1)}
    try:
        _ensure_server()
        return kaleido.calc_fig_sync(pub, opts=opts)
    except ExportUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 kaleido/choreographer errors vary by version
        raise ExportUnavailable(f"Static export failed ({type(e).__name__}: {e}). Is Chromium "
                                "installed and able to start headless?") from e


def export_figure(fig: go.Figure, out_dir: str | os.PathLike, name: str, provenance: dict | None = None,
                  formats=FORMATS, *, width: int | None = None, height: int | None = None,
                  column: str | None = None, legend: str = "below", dpi: float | None = None) -> dict[str, Path]:
    """Write <out_dir>/<name>.<fmt> for each format plus <name>.json (the sidecar: query text,
    parameters and run ids that made the figure, export settings, versions).  Returns paths.

    ``column`` ('single' ~3.5 in, 'double' ~7.2 in) lays the figure out for a journal column
    (publication_figure); the PNG is then written at ``dpi`` (default style.PRINT_DPI), so it is
    style.column_px(column) * dpi / 96 pixels wide; SVG and PDF keep the printed size."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = safe_name(name)
    paths: dict[str, Path] = {}
    pub = publication_figure(fig, width, height, column=column, legend=legend)
    if column is not None and dpi is None:
        dpi = style.PRINT_DPI
    png_scale = style.png_scale(dpi) if dpi else None
    for fmt in formats:
        data = render(pub, fmt, scale=png_scale if fmt == "png" else None)
        p = out / f"{stem}.{fmt}"
        tmp = out / f".{stem}.{fmt}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, p)
        paths[fmt] = p
    layout = {"column": column, "width_mm": style.COLUMN_MM.get(column) if column else None,
              "legend": legend if column else None, "png_dpi": dpi if dpi else style.EXPORT_SCALE * style.CSS_DPI,
              "png_scale": png_scale or style.EXPORT_SCALE}
    paths["json"] = write_sidecar(out / f"{stem}.json", name, provenance or {}, paths, pub, layout)
    return paths


def sidecar(name: str, provenance: dict, files: dict, fig: go.Figure, layout: dict | None = None) -> dict:
    import plotly

    try:
        from importlib.metadata import version
        kaleido_version = version("kaleido")
    except Exception:  # noqa: BLE001
        kaleido_version = None
    prov = dict(provenance or {})
    return {
        "figure": name,
        "title": fig.layout.title.text if fig.layout.title else None,
        "files": {k: Path(v).name for k, v in files.items()},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "query": prov.pop("query", None),
        "sql": prov.pop("sql", None),
        "params": prov.pop("params", {}),
        "run_ids": prov.pop("run_ids", []),
        "store": prov.pop("store", None),
        "extra": prov,
        "style": {"template": style.TEMPLATE_NAME, "width": fig.layout.width, "height": fig.layout.height,
                  "png_scale": style.EXPORT_SCALE, "font": style.FONT_FAMILY,
                  "font_px": fig.layout.font.size if fig.layout.font else None, **(layout or {})},
        "versions": {"plotly": plotly.__version__, "kaleido": kaleido_version},
    }


def write_sidecar(path: Path, name: str, provenance: dict, files: dict, fig: go.Figure,
                  layout: dict | None = None) -> Path:
    path.write_text(json.dumps(sidecar(name, provenance, files, fig, layout), indent=2, default=str),
                    encoding="utf-8")
    return path


# ---------------------------------------------------------------- session registry
def register(key: str, fig: go.Figure, provenance: dict | None, page: str = "") -> None:
    """Remember a chart shown in this session (for the Figures page)."""
    import streamlit as st

    from workbench.data.queries import STATE_FIGURES

    reg = st.session_state.setdefault(STATE_FIGURES, {})
    title = fig.layout.title.text if fig.layout.title and fig.layout.title.text else key
    reg[key] = {"figure": go.Figure(fig), "provenance": provenance or {}, "page": page, "title": title}


def show(fig: go.Figure, key: str, provenance: dict | None = None, page: str = "", **kwargs):
    """st.plotly_chart + register the figure for export; returns plotly_chart's value."""
    import streamlit as st

    register(key, fig, provenance, page)
    kwargs.setdefault("width", "stretch")
    return st.plotly_chart(fig, key=key, config={"displaylogo": False}, **kwargs)
