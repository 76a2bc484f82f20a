"""workbench/charts/balance.py on hand-made rows: the change against the baseline run of the same
ip scale, site weights by sample count, and figures with one trace per run and panel."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.charts import balance

META = {"b8": {"preset": "baseline", "ip_scale": 0.8, "label": "base"},
        "a8": {"preset": "am1", "ip_scale": 0.8, "label": "am1"},
        "a5": {"preset": "am1", "ip_scale": 0.5, "label": "am1 0.5"}}  # no baseline at 0.5: left out


def _rows():
    rows = []
    for run, up, inbox in (("b8", 0.5, 0.6), ("a8", 0.6, 0.65), ("a5", 0.9, 0.9)):
        for site, n in (("up_blocks.0.attentions.0.transformer_blocks.0.attn2", 3),
                        ("up_blocks.1.attentions.0.transformer_blocks.0.attn2", 1)):
            extra = 0.1 if site.startswith("up_blocks.1") else 0.0
            for step in (0, 1):
                rows.append(dict(run_id=run, site=site, part="up", step=step, n_samples=n, text_norm=1.0,
                                 id_norm=1.0, id_share=up + extra, id_ratio=1.0, n_face=n,
                                 id_share_in_box=inbox + extra, id_share_out_box=None if run == "a8" else 0.4))
    return pd.DataFrame(rows)


def test_change_against_the_baseline_of_the_same_ip_scale():
    ch = balance.against_baseline(_rows(), META)
    assert set(ch["run_id"]) == {"a8"} and set(ch["baseline"]) == {"b8"}
    whole = ch[ch["region"] == "whole image"].iloc[0]
    # weights 3 and 1 over the two sites: base 0.5 * 3/4 + 0.6 * 1/4 = 0.525; am1 0.625
    assert whole["base_share"] == pytest.approx(0.525) and whole["share"] == pytest.approx(0.625)
    assert whole["change"] == pytest.approx(0.1)
    inbox = ch[ch["region"] == "in face box"].iloc[0]
    assert inbox["change"] == pytest.approx(0.05)
    out = ch[ch["region"] == "outside face box"].iloc[0]
    assert math.isnan(out["share"]) and math.isnan(out["change"])  # no face split in a8: not a zero


def test_figures_have_one_trace_per_run_and_panel():
    df = _rows()
    fig = balance.share_by_step(df, META)
    assert sorted(t.name for t in fig.data) == ["am1", "am1 0.5", "base"]  # one panel (up) only
    assert list(fig.data[0].x) == [0, 1]
    bars = balance.change_bars(balance.against_baseline(df, META), META)
    assert len(bars.data) == 3  # one run x three regions
    heat = balance.share_heatmap(df, "a8", META)
    assert heat.data[0].z.shape == (2, 2) and heat.data[0].z[1][0] == pytest.approx(0.7)


def test_prompt_words_keep_this_prompts_words_in_prompt_order():
    from workbench.charts.maps import prompt_words

    captured = ["<end>", "library", "watercolor", "person", "<start>", "beach", ","]
    # 'beach' is a word of another prompt of the run: left out; ',' is at position 18
    got = prompt_words(captured, "watercolor person, library")
    assert got == ["<start>", "watercolor", "person", ",", "library", "<end>"]


def test_word_options_beside_id_tokens():
    from workbench.charts.maps import chosen_word, token_label, word_choice

    assert chosen_word(word_choice("library")) == "library"
    assert chosen_word((1, 2, 3)) is None and chosen_word((-1,)) is None
    assert token_label(word_choice("library")) == 'word "library" (text attention)'
    assert token_label((1, 2, 3)) == "ID tokens 1-3 (sum)"
