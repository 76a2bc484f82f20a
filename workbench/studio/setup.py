"""The Studio's setup row: model, identity (store identity or uploaded photo), prompt, seed and base
preset. The model is loaded once per server process (``st.cache_resource``) and shared by every
session; one generation at a time runs on it (the engine's lock)."""

from __future__ import annotations

import streamlit as st

from fastface.method.config import load_preset, preset_names
from fastface.studio.engine import ModelChoice, StudioEngine, Subject, dataset_photo
from workbench.data import queries

UPLOAD = "Upload a photo…"
OWN_PROMPT = "Type a prompt…"
DEFAULT_PROMPT = "close-up portrait of a person, blue plain background"


def model_choices() -> list[ModelChoice]:
    from fastface.models.checkpoints import CHECKPOINTS

    return [ModelChoice("hyper", "face"), ModelChoice("hyper", "random")] + [
        ModelChoice(c, "real") for c in CHECKPOINTS]


@st.cache_resource(show_spinner=False, max_entries=2)
def engine_for(checkpoint: str, world: str) -> StudioEngine:
    """The engine of (checkpoint, world), loaded once per server process."""
    return StudioEngine.load(ModelChoice(checkpoint, world))


def load_engine(choice: ModelChoice) -> StudioEngine | None:
    """The cached engine, with a spinner the first time; None (and the error shown) on failure."""
    try:
        with st.spinner(f"Loading {choice.label} (once per server) …"):
            return engine_for(choice.checkpoint, choice.world)
    except Exception as e:  # noqa: BLE001 shown in the page, never a traceback
        st.error(f"Cannot load {choice.label}: {' '.join(str(e).split())[:600]}")
        return None


def _reference(engine: StudioEngine, name: str, path: str):
    """The accepted reference of a store identity (cached per session), or None with a message."""
    from fastface.faces.base import FaceImageError

    cache = st.session_state.setdefault("studio_refs", {})
    key = (engine.choice, name, path)
    if key not in cache:
        try:
            cache[key] = engine.reference(name, path)
        except (FaceImageError, OSError) as e:
            st.error(f"ID photo of {name}: {e}")
            return None
    return cache[key]


def _upload(engine: StudioEngine):
    from fastface.faces.base import FaceImageError

    up = st.file_uploader("ID photo (PNG or JPEG, one face)", type=["png", "jpg", "jpeg", "webp"],
                          key="studio_upload")
    if up is None:
        st.info("Upload a photo with one face: it is detected, embedded and shown before anything is generated.")
        return None
    data = up.getvalue()
    cache = st.session_state.setdefault("studio_uploads", {})
    key = (engine.choice, up.name, len(data), hash(data))
    if key not in cache:
        try:
            cache[key] = engine.upload(data, up.name)
        except FaceImageError as e:
            st.error(f"This photo cannot be used: {e}. Nothing was generated or written.")
            return None
    return cache[key]


def subject_row(engine: StudioEngine) -> tuple[Subject | None, object]:
    """Identity, prompt and seed (and the reference shown); (None, None) until a usable photo."""
    identities = queries.query("studio_identities")
    prompts = queries.query("studio_prompts")
    names = list(identities["identity"]) if not identities.empty else []
    c1, c2, c3 = st.columns([1.2, 2.4, 0.7])
    queries.keep_valid("studio_identity", names + [UPLOAD])
    ident = c1.selectbox("Identity", names + [UPLOAD], key="studio_identity",
                         help="An identity of this store's samples (its stored ID photo), or a photo of your own.")
    prompt_opts = (list(prompts["prompt"]) if not prompts.empty else []) + [OWN_PROMPT]
    queries.keep_valid("studio_prompt", prompt_opts)
    prompt = c2.selectbox("Prompt", prompt_opts, key="studio_prompt")
    if prompt == OWN_PROMPT:
        prompt = c2.text_input("Your prompt", value=DEFAULT_PROMPT, key="studio_own_prompt").strip()
    seed = int(c3.number_input("Seed", min_value=0, max_value=2**31 - 1, value=50, step=1, key="studio_seed"))
    if not prompt:
        st.warning("The prompt is empty: type one, or choose one of the store's prompts.")
        return None, None
    if ident == UPLOAD:
        ref = _upload(engine)
        if ref is None:
            return None, None
        return Subject(ref.name, ref.path, prompt, seed), ref
    row = identities[identities["identity"] == ident].iloc[0]
    path = dataset_photo(ident, row["id_image_path"])
    if path is None:
        st.error(f"The ID photo of {ident} is not readable here ({row['id_image_path']}); upload it instead "
                 f"(Identity: {UPLOAD!r}).")
        return None, None
    ref = _reference(engine, ident, path)
    return (Subject(ident, path, prompt, seed), ref) if ref is not None else (None, None)


def show_reference(ref) -> None:
    """The ID photo with its detected face and the aligned crop the adapter sees."""
    import numpy as np

    x0, y0, x1, y1 = (int(round(v)) for v in ref.bbox)
    img = ref.image.copy()
    h, w = img.shape[:2]
    t = max(1, min(h, w) // 150)
    for (a, b, c, d) in ((y0, y0 + t, x0, x1), (y1 - t, y1, x0, x1), (y0, y1, x0, x0 + t), (y0, y1, x1 - t, x1)):
        img[max(a, 0):min(b, h), max(c, 0):min(d, w)] = np.array([0, 255, 102], dtype=np.uint8)
    # the images fill their columns (a fixed width wider than a column ran into the next one)
    c1, c2, c3 = st.columns([1, 1, 1.4], gap="medium")
    c1.image(img, caption=f"{ref.name} · face found ({ref.backend})", width="stretch")
    if ref.crop is not None:
        c2.image(ref.crop, caption="aligned crop (the adapter's input)", width="stretch")
    c3.caption(f"ID photo: `{ref.path or ref.name}`")


def base_preset(key: str = "studio_preset") -> tuple[str, object]:
    names = preset_names()
    queries.keep_valid(key, names)
    name = st.selectbox("Base preset", names, index=names.index("ff-am1") if "ff-am1" in names else 0, key=key,
                        help="The preset Generate runs as the base, and whose values the form starts from.")
    return name, load_preset(name)
