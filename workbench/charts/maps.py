"""The maps on screen of the Samples page's variants (pure functions; the page queries only the
maps it shows): decoding, the overlay map per run (sum over the chosen ID tokens, mean over the
chosen sites), the default overlay choice, one colour scale for compared panels, and the panel
figure with a colour bar that stays inside it."""

from __future__ import annotations

import numpy as np
import pandas as pd

import plotly.graph_objects as go

from workbench.charts.attention import attention_overlay, mean_map, upsample


def decode_row(row) -> np.ndarray | None:
    from store.encode import decode_map

    data = row["data"]
    if data is None or (isinstance(data, float) and np.isnan(data)):
        return None
    return decode_map(np.asarray(data, dtype=np.uint16), row["encoding"], row["scale"],
                      int(row["height"]), int(row["width"]))


def overlay_maps(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """run_id -> one map: per site and token the head-reduced map (head -1) or the mean over the
    stored heads; per site the sum over the tokens in ``rows`` (the attention the chosen ID
    tokens receive together); then the mean over sites (upsampled to the finest grid)."""
    out: dict[str, np.ndarray] = {}
    if rows.empty:
        return out
    if "token" not in rows:
        rows = rows.assign(token=0)
    for run_id, g in rows.groupby("run_id", sort=False):
        per_site = []
        for _, s in g.groupby("site", sort=True):
            per_token = []
            for _, t in s.groupby("token", sort=True):
                reduced = t[t["head"] == -1]
                use = reduced if len(reduced) else t
                m = mean_map([d for d in (decode_row(r) for _, r in use.iterrows()) if d is not None])
                if m is not None:
                    per_token.append(m)
            if per_token:
                shape = max((m.shape for m in per_token), key=lambda x: x[0] * x[1])
                per_site.append(np.sum([upsample(m, shape) for m in per_token], axis=0))
        m = mean_map(per_site)
        if m is not None:
            out[str(run_id)] = m
    return out


#: the ID tokens that attend to the face (token 0 attends to the background: FastFace paper)
FACE_TOKENS = (1, 2, 3)


#: prefix of the overlay's word options (workbench.views.samples: ID tokens are int tuples)
WORD_PREFIX = "word:"


def token_choices(tokens) -> list[tuple[int, ...]]:
    """The overlay's token options, default first: the sum over ID tokens 1-3 when captured,
    then the stored sum over all tokens (-1), then each token alone."""
    tokens = sorted({int(t) for t in tokens})
    out: list[tuple[int, ...]] = []
    if all(t in tokens for t in FACE_TOKENS):
        out.append(FACE_TOKENS)
    if -1 in tokens:
        out.append((-1,))
    out += [(t,) for t in tokens if t >= 0 and (t,) not in out]
    return out


def default_part(parts) -> str:
    """The overlay's default UNet part: 'up' (the finest maps), else the first captured."""
    parts = list(parts)
    return "up" if "up" in parts else parts[0]


def shared_zmax(maps: dict[str, np.ndarray]) -> float | None:
    """The one colour-scale maximum of compared panels: the largest value of any shown map."""
    tops = [float(np.nanmax(m)) for m in maps.values() if m is not None and np.isfinite(m).any()]
    return max(tops) if tops else None


COLORBAR_MARGIN = 58  # px below the image for the horizontal colour bar, its ticks and its title


def overlay_panel(png: bytes, amap: np.ndarray | None, *, size: tuple[int, int], box=None, opacity: float = 0.5,
                  threshold: float = 0.0, zmax: float | None = None, height: int = 330) -> go.Figure:
    """One panel of the variants: the image, the map on one colour scale (``zmax``: the shared
    maximum, or None for the panel's own) and a horizontal colour bar inside the figure, with
    few, short tick labels (a narrow panel never clips them)."""
    fig = attention_overlay(png, amap, opacity=opacity, threshold=threshold, box=box, image_size=size,
                            zmax=zmax, height=height)
    fig.update_traces(selector=dict(type="heatmap"), colorbar=dict(
        orientation="h", thickness=10, len=1.0, lenmode="fraction", x=0.5, xanchor="center", y=0, yanchor="top",
        ypad=6, nticks=4, tickformat=".2~g", tickfont=dict(size=10),
        title=dict(text="attention", side="bottom", font=dict(size=11))))
    fig.update_layout(margin=dict(l=4, r=4, t=4, b=COLORBAR_MARGIN if amap is not None else 4))
    return fig


def word_choice(word: str) -> str:
    """The overlay's option of a prompt word's text-attention map (beside the ID-token tuples)."""
    return WORD_PREFIX + word


def prompt_words(words, prompt: str) -> list[str]:
    """The captured ``words`` that belong to ``prompt`` (a run's word maps cover all its prompts),
    in prompt order: '<start>' first, then by first position in the prompt, '<end>' last."""
    text = prompt.lower()
    rank = {"<start>": -1, "<end>": len(text) + 1}
    found = {w: rank.get(w, text.find(str(w).lower())) for w in dict.fromkeys(words)}
    return sorted((w for w, i in found.items() if i != -1 or w == "<start>"), key=lambda w: (found[w], w))


def chosen_word(choice) -> str | None:
    """The prompt word of an overlay option, None for ID tokens."""
    return choice[len(WORD_PREFIX):] if isinstance(choice, str) and choice.startswith(WORD_PREFIX) else None


def token_label(token) -> str:
    """'ID token 2', 'all tokens (sum)' (the stored sum, token -1), 'ID tokens 1-3 (sum)', and
    'word "library" (text attention)' for a word option (word_choice)."""
    word = chosen_word(token)
    if word is not None:
        return f'word "{word}" (text attention)'
    tokens = tuple(int(t) for t in token) if isinstance(token, (tuple, list)) else (int(token),)
    if tokens == (-1,):
        return "all tokens (sum)"
    if len(tokens) == 1:
        return f"ID token {tokens[0]}"
    consecutive = tokens == tuple(range(tokens[0], tokens[-1] + 1))
    return f"ID tokens {tokens[0]}-{tokens[-1]} (sum)" if consecutive else \
        "ID tokens " + ", ".join(map(str, tokens)) + " (sum)"


def png_size(png: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG header, without decoding."""
    if not png or len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
