"""Generate's results: the base and the edited image side by side (each captioned with its face
detection, face size and ID similarity), their attention overlays (one shared colour scale) and
the difference, a prompt word's text-attention maps beside them (a second row, its own colour
scale), and the pre/post value histograms (Fig. 6)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fastface.studio.maps import DEFAULT_TOKENS
from workbench.charts import attention as attention_charts
from workbench.charts import studio as studio_charts
from workbench.charts.maps import png_size
from workbench.data import export

PART_MEAN = "mean of a part"
#: the shown size of the plain images (smaller images are enlarged pixel by pixel)
IMAGE_PX = 256
#: the overlay row's columns at a 1400 px window (the maps' figures are sized to it)
OVERLAY_COLUMN_PX = 200


def token_choices(tokens) -> list[tuple[int, ...]]:
    """The ID-token selections offered: the default sum (tokens 1-3), all tokens summed, each token."""
    tokens = [int(t) for t in tokens]
    default = tuple(t for t in DEFAULT_TOKENS if t in tokens)
    out = [default] if default else []
    if tuple(tokens) not in out:
        out.append(tuple(tokens))
    return out + [(t,) for t in tokens if (t,) not in out]


def token_text(sel: tuple[int, ...]) -> str:
    if len(sel) == 1:
        return f"token {sel[0]}"
    run = list(sel) == list(range(sel[0], sel[-1] + 1))
    return f"{sel[0]}–{sel[-1]} (sum)" if run else "+".join(map(str, sel)) + " (sum)"


def token_select(col, tokens, key: str) -> tuple[int, ...]:
    choices = token_choices(tokens)
    if st.session_state.get(key) not in choices:
        st.session_state.pop(key, None)
    return col.selectbox("ID tokens", choices, key=key, format_func=token_text,
                         help="Which ID tokens' attention the map shows: tokens 1-3 summed (the identity "
                              "tokens after the first), all tokens summed, or one token.")


def display_image(png: bytes, px: int = IMAGE_PX):
    """The image at ``px`` wide: smaller ones enlarged by whole pixels (nearest), larger ones as they are."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    if img.width < px:
        f = max(px // img.width, 1)
        img = img.resize((img.width * f, img.height * f), Image.NEAREST)
    return img


def face_caption(o) -> str:
    detected = {True: "face detected", False: "no face detected", None: "face detection not run"}[o.detected]
    parts = [detected]
    if o.face_size is not None:
        parts.append(f"face size {o.face_size:.3f}")
    if o.id_sim is not None:
        parts.append(f"ID similarity {o.id_sim:.3f}")
    return " · ".join(parts)


def overlay_controls(maps, key: str = "studio_ov") -> dict:
    """Where the overlay looks: part or site, step, ID tokens, stage, opacity."""
    c1, c2, c3, c4 = st.columns([1.4, 1, 1.3, 1])
    scope = c1.radio("Overlay of", [PART_MEAN, "one site"], key=f"{key}_scope", horizontal=True)
    sel: dict = {}
    if scope == PART_MEAN:
        parts = maps.parts
        sel["part"] = c1.selectbox("Part", parts, index=parts.index("up") if "up" in parts else 0, key=f"{key}_part")
    else:
        sites = sorted(maps.sites, key=attention_charts.short_site)
        sel["site"] = c1.selectbox("Site", sites, key=f"{key}_site", format_func=attention_charts.short_site)
    steps = maps.steps
    sel["step"] = (c2.select_slider("Step", steps, value=steps[-1], key=f"{key}_step") if len(steps) > 1
                   else steps[0])
    sel["tokens"] = token_select(c3, maps.tokens, key=f"{key}_tokset")
    stages = maps.stages
    sel["stage"] = c4.radio("Stage", stages, index=len(stages) - 1, key=f"{key}_stage", horizontal=True)
    sel["opacity"] = c4.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key=f"{key}_opacity")
    return sel


def where_text(sel: dict) -> str:
    where = f"{sel['part']} (mean of its sites)" if sel.get("part") else attention_charts.short_site(sel["site"])
    return f"{where} · step {sel['step']} · ID tokens {token_text(sel['tokens'])} · {sel['stage']}"


def default_word(words: list[str]) -> str | None:
    """The word row's first choice: 'person' (the subject of the face prompts), else the first
    word of the prompt longer than three letters, else its first word."""
    if "person" in words:
        return "person"
    inner = [w for w in words if w not in ("<start>", "<end>")]
    return next((w for w in inner if len(w) > 3), (inner or words or [None])[0])


def word_row(base, edited, sel: dict, size, height: int, prov: dict) -> None:
    """The chosen prompt word's text-attention map of base and edited (the overlay's part or
    site and step; stage pre: the text attention has no AM) and their difference, one colour scale."""
    words = edited.word_maps.words
    if not words:
        st.caption("No prompt-word maps in this result (the engine captures none).")
        return
    key = "studio_word"
    if st.session_state.get(key) not in words:
        st.session_state[key] = default_word(words)
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    word = c1.selectbox("Prompt word", words, key=key,
                        help="A word of the prompt (its sub-word tokens summed; <start> and <end> are the "
                             "prompt's first and last token): where the block's text attention "
                             "softmax(QK^T/sqrt(d)) puts that word, beside the ID tokens' map above.")
    wmaps = {k: o.word_maps.map(step=sel["step"], word=word, part=sel.get("part"), site=sel.get("site"))
             for k, o in (("base", base), ("edited", edited))}
    zmax = studio_charts.shared_zmax(*wmaps.values())
    where = where_text(sel).split(" · ID tokens")[0]
    c2.caption(f"Word “{word}”: the text attention of the same blocks — {where} · stage pre (before any AM): "
               f"the share of each pixel's attention over the prompt's 77 tokens that goes to this word · its own "
               f"colour scale (0 to {zmax:.3g})" if zmax is not None else f"No map of the word “{word}” for {where}.")
    wprov = {**prov, "params": {**prov["params"], "word": word, "stream": "text", "stage": "pre"}}
    compare_row({"base": base, "edited": edited}, wmaps, zmax, sel["opacity"], size, height, wprov,
                key="studio_word", heading=f" · word “{word}”", diff_heading="**difference** · word")


def compare_row(outcomes: dict, maps: dict, zmax, opacity: float, size, height: int, prov: dict, *, key: str,
                heading: str, diff_heading: str, diff_key: str | None = None) -> None:
    """One row of three panels: the base's and the edited image's map (one colour scale, ``zmax``)
    and their difference, each exportable."""
    cols = st.columns(3)
    for col, (label, o) in zip(cols, outcomes.items()):
        with col:
            st.markdown(f"**{label}**{heading}")
            fig = studio_charts.overlay(o.png, maps[label], size, opacity=opacity, box=o.box, height=height, zmax=zmax)
            export.show(fig, key=f"{key}_{label}", page="Studio", provenance=prov, theme=None)
    with cols[2]:
        st.markdown(diff_heading)
        diff = studio_charts.difference(maps["edited"], maps["base"])
        export.show(studio_charts.difference_map(diff, size, height=height), key=diff_key or f"{key}_diff",
                    page="Studio", provenance=prov, theme=None)


def face_table(outcomes: dict) -> pd.DataFrame:
    rows = []
    for label, o in outcomes.items():
        rows.append({"image": label, "face detected": {True: "yes", False: "no", None: "not run"}[o.detected],
                     "face size": o.face_size, "ID similarity": o.id_sim, "seconds": round(o.seconds, 2),
                     "status": "ok" if o.ok else f"failed: {o.error}"})
    return pd.DataFrame(rows)


def show_results(result: dict) -> None:
    """``result``: base and edited Outcomes, the edits' coordinates, subject and base preset name."""
    base, edited = result["base"], result["edited"]
    for label, o in (("base", base), ("edited", edited)):
        if not o.ok:
            st.error(f"The {label} image failed: {o.error}")
            return
    coords = result["coords"]
    edits = ", ".join(f"{k}={studio_charts_text(v)}" for k, v in coords.items()) or "no edit (the preset itself)"
    st.caption(f"{result['subject'].identity} · “{result['subject'].prompt}” · seed {result['subject'].seed} · "
               f"base **{result['preset']}** · edited: {edits}")
    for col, (label, o) in zip(st.columns(2), (("base", base), ("edited", edited))):
        with col:
            st.markdown(f"**{label}** · {result['preset']}" + ("" if label == "base" else " + edits"))
            st.image(display_image(o.png), width=IMAGE_PX)
            st.caption(face_caption(o))
    sel = overlay_controls(edited.maps)
    amaps = {k: o.maps.map(step=sel["step"], stage=sel["stage"], tokens=sel["tokens"], part=sel.get("part"),
                           site=sel.get("site")) for k, o in (("base", base), ("edited", edited))}
    zmax = studio_charts.shared_zmax(*amaps.values())
    st.caption(f"Attention: {where_text(sel)} · one colour scale (0 to {zmax:.3g})" if zmax is not None
               else f"No maps for {where_text(sel)}.")
    size = png_size(base.png) or (64, 64)
    height = studio_charts.map_height(OVERLAY_COLUMN_PX, size)
    prov = {"query": "studio:generate", "params": {"coords": {k: studio_charts_text(v) for k, v in coords.items()},
                                                   "preset": result["preset"], **sel},
            "configs": {"base": base.config.to_dict(), "edited": edited.config.to_dict()}}
    compare_row({"base": base, "edited": edited}, amaps, zmax, sel["opacity"], size, height, prov,
                key="studio_overlay", heading=" · attention", diff_heading="**difference**", diff_key="studio_diff")
    word_row(base, edited, sel, size, height, prov)
    st.dataframe(face_table({"base": base, "edited": edited}), hide_index=True, width="stretch",
                 column_config={"face size": st.column_config.NumberColumn(format="%.3f", help="face box area / image area"),
                                "ID similarity": st.column_config.NumberColumn(
                                    format="%.3f", help="cosine of the generated and the reference face embedding")})
    with st.container(border=True):
        h2, h3 = st.columns([2, 1], vertical_alignment="bottom")
        scope = h2.radio("Histogram over", ["the overlay's selection", "every map"], key="studio_hist_scope",
                         horizontal=True)
        log_y = h3.toggle("Log scale", value=True, key="studio_hist_log")
        hists, counts = {}, []
        for label, o in (("base", base), ("edited", edited)):
            for stage in o.maps.stages:
                if scope == "every map":
                    h, n = o.maps.histogram(stage=stage)
                else:
                    h, n = o.maps.histogram(stage=stage, tokens=sel["tokens"], part=sel.get("part"),
                                            site=sel.get("site"), steps=[sel["step"]])
                hists[(label, stage)] = h
                counts.append(f"{label} {stage}: {n}")
        fig = studio_charts.value_histograms(hists, log_y=log_y)
        export.show(fig, key="studio_hist", page="Studio", provenance=prov, theme=None)
        st.caption("Maps summed: " + ", ".join(counts))


def studio_charts_text(v) -> str:
    from fastface.studio.edits import text_of

    return text_of(v)
