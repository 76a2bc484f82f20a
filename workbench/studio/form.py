"""The Studio's parameter form: one field per parameter path of the config (built from
``fastface.method.paths.param_paths()``, grouped by :data:`fastface.studio.edits.SECTIONS`),
showing the base preset's values; plus edits by path (``guidance.beta[3]=3``). Validation is
``set_value``'s: a refused value shows its ConfigError line."""

from __future__ import annotations

import streamlit as st

from fastface.method.config import PARTS, FastFaceConfig
from fastface.method.paths import describe
from fastface.studio.edits import CHOICES, apply_edits, form_texts, parse_path_lines, sections

PREFIX = "studio_p_"
LINES = "studio_path_lines"
STATE_FORM_OF = "studio_form_of"
#: a kept run to reopen: (preset, config JSON), consumed by load_config on the next run
STATE_OPEN = "studio_open"


def _key(path: str) -> str:
    return PREFIX + path.replace(".", "__")


def load_config(config: FastFaceConfig, of: str) -> None:
    """Fill the form with ``config``'s values when the form shows something else (``of``: what
    it shows, e.g. the base preset's name)."""
    if st.session_state.get(STATE_FORM_OF) == of:
        return
    for path, text in form_texts(config).items():
        st.session_state[_key(path)] = text
        st.session_state.pop(_key(path) + "_ms", None)  # the parts' multiselect shows the new value
    st.session_state[LINES] = ""
    st.session_state[STATE_FORM_OF] = of


def _field(col, path: str, base_text: str) -> str:
    label = path.split(".")[-1].replace("_", " ")
    changed = st.session_state.get(_key(path), base_text) != base_text
    label = f"**{label}** ✎" if changed else label
    help_ = f"`{path}`: {describe(path)}. Preset value: {base_text}"
    if path in CHOICES:
        opts = list(CHOICES[path])
        if st.session_state.get(_key(path)) not in opts:
            st.session_state[_key(path)] = base_text if base_text in opts else opts[0]
        return col.selectbox(label, opts, key=_key(path), help=help_)
    if path == "am.parts":
        current = [p for p in str(st.session_state.get(_key(path), base_text)).split("/") if p in PARTS]
        chosen = col.multiselect(label, list(PARTS), default=current, key=_key(path) + "_ms", help=help_)
        st.session_state[_key(path)] = "/".join(chosen)
        return "/".join(chosen)
    return col.text_input(label, key=_key(path), help=help_)


def parameter_form(base: FastFaceConfig, base_name: str, num_steps: int) -> tuple[FastFaceConfig | None, dict, list]:
    """Render the form; returns (edited config or None, coordinates of the edits, error lines)."""
    base_texts = form_texts(base)
    texts: dict[str, str] = {}
    for title, paths in sections():
        edited = sum(st.session_state.get(_key(p), base_texts[p]) != base_texts[p] for p in paths)
        with st.expander(title + (f" · {edited} edited" if edited else ""), expanded=title.startswith(("AM1", "AM2"))
                         and base_texts["am.kind"] == title[:3].lower()):
            cols = st.columns(2)
            for i, path in enumerate(paths):
                texts[path] = _field(cols[i % 2], path, base_texts[path])
    with st.expander("Edits by path", expanded=bool(st.session_state.get(LINES))):
        st.text_area("One PATH=value per line, applied after the fields (a per-step schedule takes a step "
                     "index)", key=LINES, height=90, placeholder="guidance.beta[3]=3\nam.am2.steepness[0]=9")
    errors = []
    try:
        lines = parse_path_lines(st.session_state.get(LINES) or "")
    except Exception as e:  # noqa: BLE001 ConfigError: one line
        return None, {}, [str(e)]
    config, coords, errors = apply_edits(base, list(texts.items()) + lines, num_steps)
    return config, coords, errors


def reset_button() -> None:
    if st.button("Reset the form to the preset", key="studio_reset", icon=":material/restart_alt:", type="tertiary"):
        st.session_state.pop(STATE_FORM_OF, None)
        st.rerun()
