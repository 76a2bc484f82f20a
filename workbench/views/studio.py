"""Studio: change any method parameter and see image, attention and identity respond (the base
preset beside the edited config, one seed); Keep writes both as runs; Grid renders one or two
parameter paths as the paper's ablation grids.  The work is fastface.studio; the parts of this
page are workbench/studio."""

import json

import streamlit as st

from fastface.method.config import ConfigError, FastFaceConfig
from fastface.studio.engine import StudioError
from workbench.data import queries
from workbench.studio import form, grid, results, setup

STATE_RESULT = "studio_result"

st.title("Studio")
path, _ = queries.require_store()

opened = st.session_state.pop(form.STATE_OPEN, None)
if opened:  # a kept run reopened: its preset, and its config in the form
    st.session_state["studio_preset"] = opened["preset"]
    st.session_state.pop(form.STATE_FORM_OF, None)
    form.load_config(FastFaceConfig.from_json(opened["config"]), of=opened["preset"])

choices = setup.model_choices()
top1, top2 = st.columns([1, 3])
choice = top1.selectbox("Model", choices, key="studio_model", format_func=lambda c: c.label,
                        help="Loaded once per server process and shared by every session; one generation at a "
                             "time runs on it.")
engine = setup.load_engine(choice)
if engine is None:
    st.stop()
top2.caption(f"{engine.num_steps} steps · face backend {engine.spec.face_backend} · probe: head-mean maps of every "
             f"site, step and ID token, pre and post, and of every prompt word (text attention, pre) · images generated on this model so far: "
             f"{engine.generated}")
subject, ref = setup.subject_row(engine)

tab_edit, tab_grid = st.tabs(["Edit and generate", "Grid"])

with tab_edit:
    left, right = st.columns([1, 2.3], gap="medium")
    with left:
        preset, base = setup.base_preset()
        form.load_config(base, of=preset)
        edited, coords, errors = form.parameter_form(base, preset, engine.num_steps)
        for line in errors:
            st.error(line)
        b1, b2 = st.columns(2)
        generate = b1.button("Generate", type="primary", key="studio_generate", icon=":material/play_arrow:",
                             disabled=subject is None or edited is None, width="stretch")
        keep = b2.button("Keep", key="studio_keep", icon=":material/bookmark_add:",
                         disabled=st.session_state.get(STATE_RESULT) is None, width="stretch",
                         help="Write the base and the edited image as two runs of the store (Runs, Compare, SQL "
                              "and Figures see them).")
        form.reset_button()
        status = st.empty()
    with right:
        if ref is not None:
            with st.expander("Reference photo", expanded=st.session_state.get(STATE_RESULT) is None):
                setup.show_reference(ref)
        if generate and edited is not None and subject is not None:
            bar = st.progress(0.0, text="Generating the base image …")
            generated = False
            wait = st.empty()
            try:
                base_out, edited_out = engine.generate(
                    subject, [base, edited],
                    on_wait=lambda: wait.info("Waiting: another generation is running on this model; yours "
                                              "starts when it ends."),
                    on_progress=lambda done, total, o: bar.progress(
                        done / total, text="Generating the edited image …" if done < total else "Done"))
                st.session_state[STATE_RESULT] = {"base": base_out, "edited": edited_out, "coords": coords,
                                                  "subject": subject, "preset": preset, "choice": choice}
                generated = True
            except (StudioError, ConfigError, ValueError) as e:
                st.error(f"Generate failed: {e}")
            finally:
                wait.empty()
                bar.empty()
            if generated:
                st.rerun()  # the Keep button (drawn before) is enabled by the new result
        result = st.session_state.get(STATE_RESULT)
        if result is None:
            st.info("Choose an identity, prompt and seed, edit the parameters on the left and press **Generate**: "
                    "the base preset and your edit are generated on the same seed with their attention maps.")
        elif result["choice"] != choice:
            st.info("The last result was made with another model; press Generate.")
        else:
            results.show_results(result)

    if keep and st.session_state.get(STATE_RESULT) is not None:
        result = st.session_state[STATE_RESULT]
        with status, st.spinner("Keeping: writing both runs into the store …"):
            try:
                from fastface.studio.keep import keep as keep_runs

                plans, counts = keep_runs(engine, path, result["subject"], result["preset"],
                                          [(result["base"].config, {}), (result["edited"].config, result["coords"])])
                queries.refresh()
                st.success(f"Kept {len(plans)} runs ({counts['written']} samples written, {counts['skipped']} "
                           f"already there): " + ", ".join(p.run_id for p in plans))
            except Exception as e:  # noqa: BLE001 shown, never a traceback
                st.error(f"Keep failed: {' '.join(str(e).split())[:600]}")

    with st.expander("Reopen a kept config"):
        try:
            kept = queries.query("studio_kept", freshness="live")
        except Exception as e:  # noqa: BLE001 a store without variation runs (older layout)
            kept = None
            st.caption(f"No kept configs readable in this store ({type(e).__name__}).")
        if kept is not None and kept.empty:
            st.caption("No kept configs yet: Keep a result, or capture a grid with `fastface capture --vary`.")
        elif kept is not None:
            pick = st.selectbox("Kept run", list(kept["run_id"]), key="studio_kept_pick",
                                format_func=lambda r: (lambda row: f"{row.preset} · {row.label or 'base'} · {r}")(
                                    kept[kept["run_id"] == r].iloc[0]))
            if st.button("Open in the form", key="studio_kept_open"):
                row = kept[kept["run_id"] == pick].iloc[0]
                base_name = json.loads(row["variation_json"]).get("base") or row["preset"]
                st.session_state[form.STATE_OPEN] = {"preset": base_name, "config": row["config_json"]}
                st.rerun()

with tab_grid:
    grid.grid_tab(engine, subject, path)
