"""`fastface report` on a store with known metric values (written with StoreWriter directly):
means, n, FFC, relative changes from the paired means, the sign-flip test and its minimum n,
Pareto fronts, checked by hand — under both protocols (each store also holds rows of the
other protocol with different values, and untagged rows, which the report must leave out)."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastface.evaluation.protocol import tag_model  # noqa: E402
from store.records import MetricRecord, RunRecord, SampleRecord, sample_key  # noqa: E402
from tests.store_helpers import tiny_png  # noqa: E402

ID_M = "insightface/buffalo_l@aaaa0001"
DLIB_M = "dlib/face_recognition_resnet_model_v1@bbbb0002"
CLIP_M = "openai/clip-vit-large-patch14@cccc0003"
UNITS = [  # identity, prompt, category, seed
    ("idA", "a photo of a person in a park", "realistic", 1),
    ("idA", "watercolor; Person reading a book", "stylistic", 1),
    ("idB", "a photo of a person in a park", "realistic", 2),
    ("idB", "watercolor; Person reading a book", "stylistic", 2),
]
N = None
RUNS = {  # run_id: (preset, ip, {metric: values per unit (None = no row), with id_sim None = no face})
    "b08": ("baseline", 0.8, {"id": [0.50, 0.60, 0.40, N], "det": [1, 1, 1, 0], "clip": [0.20, 0.30, 0.25, 0.25],
                              "dlib": [0.70, 0.80, 0.60, 0.50]}),
    "f08": ("ff-am2", 0.8, {"id": [0.60, 0.70, 0.50, 0.40], "det": [1, 1, 1, 1], "clip": [0.19, 0.29, 0.24, 0.24],
                            "dlib": [0.75, 0.85, 0.65, 0.55]}),
    "b05": ("baseline", 0.5, {"id": [0.40, 0.45, 0.35, 0.40], "det": [1, 1, 1, 1], "clip": [0.30] * 4}),
    "f05": ("ff-am2", 0.5, {"id": [0.45, 0.50, 0.40, 0.45], "det": [1, 1, 1, 1], "clip": [0.28, 0.28, 0.28, "skip"]}),
    "a05": ("am1", 0.5, {"id": [0.39] * 4, "det": [1, 1, 1, 1], "clip": [0.27] * 4}),
}
OTHER = {"release": "corrected", "corrected": "release"}


def build_store(path: Path, protocol: str) -> Path:
    from store.writer import StoreWriter

    t, o = (lambda m: tag_model(m, protocol)), (lambda m: tag_model(m, OTHER[protocol]))
    with StoreWriter(path, worker_id="test", durable=False) as w:
        for run_id, (preset, ip, vals) in RUNS.items():
            w.begin_run(RunRecord(run_id=run_id, config={"preset": preset, "ip": ip}, preset=preset, checkpoint="hyper",
                                  ip_scale=ip, lora_scale=1.0, seed=50))
            for i, (ident, prompt, cat, seed) in enumerate(UNITS):
                metrics = [MetricRecord("face_detected", vals["det"][i], t(ID_M))]
                if vals["det"][i]:
                    metrics.append(MetricRecord("id_sim", vals["id"][i], t(ID_M)))
                else:
                    metrics.append(MetricRecord("id_sim", None, t(ID_M)))
                if vals["clip"][i] != "skip":
                    metrics.append(MetricRecord("clip_t", vals["clip"][i], t(CLIP_M)))
                if "dlib" in vals:
                    metrics += [MetricRecord("id_sim", vals["dlib"][i], t(DLIB_M)),
                                MetricRecord("face_detected", 1, t(DLIB_M))]
                metrics.append(MetricRecord("id_sim", 0.99, "insightface"))  # untagged (a capture row): left out
                # the other protocol's rows, with values that would change every mean if they were read
                metrics += [MetricRecord("id_sim", 0.0, o(ID_M)), MetricRecord("face_detected", 0, o(ID_M)),
                            MetricRecord("clip_t", 0.9, o(CLIP_M))]
                w.write_sample(run_id, SampleRecord(sample_key=sample_key(ident, prompt, seed), identity=ident,
                                                    prompt=prompt, category=cat, seed=seed, image_png=tiny_png(),
                                                    width=64, height=64, sample_index=i), metrics=metrics)
            if run_id == "f08":  # a failed generation: counted in N, never in a mean
                w.write_sample(run_id, SampleRecord(sample_key=sample_key("idC", UNITS[0][1], 3), identity="idC",
                                                    prompt=UNITS[0][1], category="realistic", seed=3, status="failed",
                                                    error="CUDA out of memory (synthetic)", sample_index=9))
    return path


@pytest.fixture(scope="module", params=["release", "corrected"])
def report(request, tmp_path_factory):
    from fastface.evaluation.report import make_report

    root = tmp_path_factory.mktemp(f"report-{request.param}")
    store = build_store(root / "store", request.param)
    rep = make_report(store, root / "out", seed=0, figures=False, echo=lambda s: None, protocol=request.param)
    return rep, root / "out", store, request.param


def _row(rep, subset, run_id):
    t = rep.tables[subset]
    return t[t["run_id"] == run_id].iloc[0].to_dict()


def test_models_prefer_versioned_and_give_a_dlib_second_opinion(report):
    rep, _, _, protocol = report
    assert rep.protocol == protocol
    assert rep.models["id"] == tag_model(ID_M, protocol) and rep.models["ffc"] == tag_model(ID_M, protocol)
    assert rep.models["id2"] == tag_model(DLIB_M, protocol) and rep.models["clip"] == tag_model(CLIP_M, protocol)
    assert rep.models["ae"] is None and rep.models["ir"] is None


def test_joint_table_numbers_by_hand(report):
    rep, _, _, _ = report
    b, f = _row(rep, "joint", "b08"), _row(rep, "joint", "f08")
    # baseline: ID over detected faces only: (0.5 + 0.6 + 0.4) / 3, the 4th image has no face
    assert b["id_mean"] == pytest.approx(0.5) and b["id_n"] == 3 and b["ffc"] == 1 and b["ffc_n"] == 4
    assert b["clip_mean"] == pytest.approx(0.25) and b["clip_n"] == 4 and math.isnan(b["id_rel"])
    assert b["baseline_run"] == "b08" and b["n_ok"] == 4 and b["n_failed"] == 0
    assert f["id_mean"] == pytest.approx(0.55) and f["id_n"] == 4 and f["ffc"] == 0
    assert f["n_ok"] == 4 and f["n_failed"] == 1 and f["baseline_run"] == "b08"
    # paired: 3 units where both have a face, each +0.1; change from the paired means 0.6 vs 0.5 = +20 %
    assert f["id_pairs"] == 3 and f["id_delta"] == pytest.approx(0.1) and f["id_rel"] == pytest.approx(20.0)
    assert f["id_lo"] == pytest.approx(0.1) and f["id_hi"] == pytest.approx(0.1)
    # 3 pairs all +0.1: p = 2/8 (the observed signs and their mirror); n < 6: never marked
    assert f["id_p"] == pytest.approx(0.25) and not f["id_sig"]
    assert f["clip_mean"] == pytest.approx(0.24) and f["clip_rel"] == pytest.approx(-4.0)
    assert f["clip_delta"] == pytest.approx(-0.01) and f["clip_pairs"] == 4 and f["clip_p"] == pytest.approx(2 / 16)
    assert not f["clip_sig"]
    assert f["id2_mean"] == pytest.approx(0.70) and f["id2_rel"] == pytest.approx(100 * 0.05 / 0.65)
    # the λ = 0.5 group has its own baseline; one CLIP row missing is reported, not hidden
    f5 = _row(rep, "joint", "f05")
    assert f5["baseline_run"] == "b05" and f5["clip_n"] == 3 and f5["clip_n_rows"] == 3 and f5["clip_n_ok"] == 4
    assert f5["clip_rel"] == pytest.approx(100 * (0.28 - 0.30) / 0.30)


def test_subset_tables(report):
    rep, _, _, _ = report
    # realistic: units 0 and 2
    b, f = _row(rep, "realistic", "b08"), _row(rep, "realistic", "f08")
    assert b["id_mean"] == pytest.approx(0.45) and b["id_n"] == 2 and b["ffc"] == 0
    assert f["id_mean"] == pytest.approx(0.55) and f["id_rel"] == pytest.approx(100 * 0.1 / 0.45)
    assert f["n_failed"] == 1  # the failed sample is realistic
    # stylistic: units 1 and 3; the baseline misses a face on unit 3 -> one pair (0.7 vs 0.6).  The unpaired
    # means (0.55 vs 0.6) would say -8.3 % although the only pair says +0.1: the change follows the pair
    b, f = _row(rep, "stylistic", "b08"), _row(rep, "stylistic", "f08")
    assert b["id_mean"] == pytest.approx(0.6) and b["id_n"] == 1 and b["ffc"] == 1
    assert f["id_mean"] == pytest.approx(0.55) and f["id_delta"] == pytest.approx(0.1)
    assert f["id_rel"] == pytest.approx(100 * 0.1 / 0.6) and f["id_pairs"] == 1 and not f["id_sig"]
    # FSC covers every prompt under both protocols: a column in every table
    assert all("fsc_mean" in rep.tables[s] for s in ("joint", "stylistic", "realistic"))


def test_markdown_latex_and_csv_show_n_ffc_p_and_protocol(report):
    rep, out, _, protocol = report
    md = (out / "report.md").read_text()
    assert f"**Evaluation protocol: {protocol}**" in md and f"`fastface report --protocol {protocol}`" in md
    assert f"without a protocol tag" in md and f"of protocol {OTHER[protocol]}" in md  # what was left out
    assert "0.550 (+20.0%) [n=4/4, FFC=0; p=0.250, 3 pairs]" in md
    assert "0.700 (+7.7%) [n=4/4, FFC=0; p=0.125, 4 pairs]" in md  # the dlib second opinion with its own FFC
    assert "— [n=0/4, FFC=—, not evaluated=4]" in md  # λ = 0.5 runs have no dlib rows: said, not hidden
    assert "0.500 [n=3/4, FFC=1]" in md
    assert "0.240 (-4.0%) [n=4/4; p=0.125, 4 pairs]" in md
    assert "0.280 (-6.7%) [n=3/4, not evaluated=1; p=0.250, 3 pairs]" in md
    assert "| hyper | 1 | 0.8 | ff-am2 | 4 (1) |" in md
    assert "Table 2: stylistic prompts" in md and "Table 3: realistic prompts" in md
    assert "+0.1000 [+0.1000, +0.1000]" in md and "cannot be marked (n < 6)" in md
    assert "*" not in md.split("## Models")[1].split("## Paired")[0].replace("**", "")  # no mark below 6 pairs
    tex = (out / "tables.tex").read_text()
    assert r"0.550 (+20.0\%) {\tiny [n=4/4, FFC=0; p=0.250, 3 pairs]}" in tex
    assert tex.count(r"\begin{tabular}") == 3 and tex.count(r"\end{table}") == 3
    assert f"evaluation protocol: {protocol}" in tex.splitlines()[0] and f"(evaluation protocol: {protocol})" in tex
    with open(out / "table1_joint.csv") as fh:
        rows = {r["run_id"]: r for r in csv.DictReader(fh)}
    assert float(rows["f08"]["id_mean"]) == pytest.approx(0.55) and rows["f08"]["ffc"] == "0"
    assert float(rows["b08"]["id_n"]) == 3 and rows["b08"]["ffc"] == "1"
    with open(out / "paired_stats.csv") as fh:
        stats = list(csv.DictReader(fh))
    assert {(s["subset"], s["run_id"], s["metric"]) for s in stats} >= {("joint", "f08", "id_sim"),
                                                                     ("stylistic", "f08", "clip_t")}
    assert all(s["run_id"] not in ("b08", "b05") for s in stats) and {s["protocol"] for s in stats} == {protocol}
    import json

    assert json.loads((out / "report.json").read_text())["protocol"] == protocol


def test_both_protocols_in_a_store_need_a_choice(report, tmp_path):
    from fastface.evaluation.report import make_report

    _, _, store, protocol = report
    with pytest.raises(ValueError, match="both protocols"):
        make_report(store, tmp_path / "x", figures=False, echo=lambda s: None)


def test_fronts_and_pareto(report):
    from fastface.evaluation.report import pareto_mask

    rep, out, _, _ = report
    fr = rep.fronts[rep.fronts["x_metric"] == "clip"].set_index("run_id")
    assert fr.loc["b08", "x"] == pytest.approx(0.25) and fr.loc["b08", "id"] == pytest.approx(0.5)
    # (clip, id): b08 (0.25, 0.5) f08 (0.24, 0.55) b05 (0.30, 0.40) f05 (0.28, 0.45) a05 (0.27, 0.39)
    assert fr["pareto"].to_dict() == {"b08": True, "f08": True, "b05": True, "f05": True, "a05": False}
    assert pareto_mask([1, 2, 2, float("nan")], [2, 1, 2, 5]) == [False, False, True, False]
    assert "Pareto-optimal" in (out / "report.md").read_text()


def test_report_sql_is_named_and_bound(report):
    from store.db import connect_read_only
    from store.queries import query_params, load_query, run_query

    _, _, store, protocol = report
    for name in ("report_runs", "report_metric_summary", "report_metric_units", "report_eval_samples",
                 "report_metric_keys"):
        assert query_params(load_query(name)) == {"runs"}, name
    con = connect_read_only(store)
    try:
        one = run_query(con, "report_metric_summary", runs="f05")
        assert set(one["run_id"]) == {"f05"}
        clip = one[(one["name"] == "clip_t") & (one["subset"] == "joint")
                   & (one["model"] == tag_model(CLIP_M, protocol))].iloc[0]
        assert (clip["n_ok"], clip["n_rows"], clip["n_missing"], clip["n"]) == (4, 3, 1, 3)
        two = run_query(con, "report_runs", runs="b08,f08")
        assert sorted(two["run_id"]) == ["b08", "f08"]
        assert two.set_index("run_id").loc["f08", "n_failed"] == 1
    finally:
        con.close()


def test_report_cli_and_unknown_run(report, tmp_path, capsys):
    from fastface.cli.evaluate import main

    _, _, store, protocol = report
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "r"), "--run", "b08,f08",
                 "--no-figures", "--protocol", protocol]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "f08" in md and "b05" not in md
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "x"), "--run", "nope"]) == 2
    assert "unknown run(s) ['nope']" in capsys.readouterr().err
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "y"), "--no-figures"]) == 2
    assert "pass --protocol release or --protocol corrected" in capsys.readouterr().err


def test_figures_skipped_with_a_clear_message_without_chromium(report, tmp_path, monkeypatch):
    from fastface.evaluation.report import make_report

    _, _, store, protocol = report
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    rep = make_report(store, tmp_path / "a", echo=lambda s: None, protocol=protocol)
    assert rep.figure_message.startswith("figures skipped: static export needs Chromium")
    assert "figures skipped: static export needs Chromium" in (tmp_path / "a" / "report.md").read_text()
    assert not (tmp_path / "a" / "figures").exists() and (tmp_path / "a" / "fronts.csv").is_file()


def test_front_figures_png_and_svg(report, tmp_path):
    import json

    from fastface.evaluation.report import make_report
    from workbench.data.export import browser_path

    if browser_path() is None:
        pytest.skip("no Chromium for kaleido (apt-get install -y chromium)")
    _, _, store, protocol = report
    rep = make_report(store, tmp_path / "b", formats=("png", "svg"), echo=lambda s: None, protocol=protocol)
    figs = tmp_path / "b" / "figures"
    assert rep.figure_message == ""
    assert sorted(p.name for p in figs.iterdir()) == ["front_hyper_lora1_clip.json", "front_hyper_lora1_clip.png",
                                                      "front_hyper_lora1_clip.svg"]
    assert (figs / "front_hyper_lora1_clip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (figs / "front_hyper_lora1_clip.svg").read_text()[:500]
    side = json.loads((figs / "front_hyper_lora1_clip.json").read_text())
    assert side["run_ids"] == ["a05", "b05", "b08", "f05", "f08"] and side["query"] == "report_metric_summary"
    assert side["extra"]["protocol"] == protocol and f"{protocol} protocol" in side["title"]
    assert "![front_hyper_lora1_clip](figures/front_hyper_lora1_clip.png)" in (tmp_path / "b" / "report.md").read_text()


IR_M = "THUDM/ImageReward@dddd0004"
AE_M = "christophschuhmann/improved-aesthetic-predictor/ava+logos-l14-linearMSE.pth@eeee0005+" + CLIP_M
BASE_ID = [0.40, 0.42, 0.44, 0.46, 0.48, 0.50, 0.52, 0.54]
BASE_IR = [0.01, -0.02, 0.03, -0.01, 0.0, 0.02, -0.03, 0.01]  # mean 0.00125: a % of it would be meaningless


def test_marks_with_enough_pairs_and_absolute_changes(tmp_path):
    """8 pairs: ID up by 0.05..0.12 in every pair -> exact p = 2/256, marked; IR up by 0.5 and AE down
    by 0.1 everywhere -> shown as absolute Δ (no meaningful zero), marked; CLIP with mixed signs not marked."""
    from fastface.evaluation.report import make_report
    from store.writer import StoreWriter

    t = lambda m: tag_model(m, "release")  # noqa: E731
    clip_d = [0.01, -0.01, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03]
    with StoreWriter(tmp_path / "s", worker_id="t", durable=False) as w:
        for run_id, preset in (("b", "baseline"), ("f", "ff-am2")):
            w.begin_run(RunRecord(run_id=run_id, config={}, preset=preset, checkpoint="hyper", ip_scale=0.8,
                                  lora_scale=1.0, seed=50))
            for i in range(8):
                up = run_id == "f"
                m = [MetricRecord("id_sim", BASE_ID[i] + (0.05 + 0.01 * i if up else 0), t(ID_M)),
                     MetricRecord("face_detected", 1, t(ID_M)),
                     MetricRecord("image_reward", BASE_IR[i] + (0.5 if up else 0), t(IR_M)),
                     MetricRecord("aesthetic", 5.0 + 0.1 * i - (0.1 if up else 0), t(AE_M)),
                     MetricRecord("clip_t", 0.25 + (clip_d[i] if up else 0), t(CLIP_M))]
                w.write_sample(run_id, SampleRecord(sample_key=sample_key(f"id{i}", "p", 50), identity=f"id{i}",
                                                    prompt="p", category="realistic", seed=50, image_png=tiny_png(),
                                                    width=64, height=64, sample_index=i), metrics=m)
    rep = make_report(tmp_path / "s", tmp_path / "out", figures=False, echo=lambda s: None)  # the only protocol
    assert rep.protocol == "release"
    f = _row(rep, "joint", "f")
    assert f["id_pairs"] == 8 and f["id_p"] == pytest.approx(2 / 256) and f["id_sig"]
    assert f["id_rel"] == pytest.approx(100 * 0.085 / 0.47)  # mean delta 0.085 over the paired baseline mean 0.47
    assert f["ir_delta"] == pytest.approx(0.5) and math.isnan(f["ir_rel"]) and f["ir_sig"]
    assert f["ae_delta"] == pytest.approx(-0.1) and math.isnan(f["ae_rel"]) and f["ae_sig"]
    assert f["clip_delta"] == pytest.approx(0.0) and f["clip_p"] == pytest.approx(1.0) and not f["clip_sig"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "(+18.1%)* [n=8/8, FFC=0; p=0.008, 8 pairs]" in md
    assert "(Δ +0.500)* [n=8/8; p=0.008, 8 pairs]" in md and "(Δ -0.100)* [n=8/8; p=0.008, 8 pairs]" in md
    assert "yes (p ≤ 0.05)" in md
    row = next(line for line in md.split("## Table 1")[1].splitlines() if "`f`" in line).split(" | ")
    # | Checkpoint | LoRA | λ | Preset | N | ID | CLIP | AE | IR | FFC | Run |
    assert row[7].startswith("5.250 (Δ -0.100)*") and row[8].startswith("0.501 (Δ +0.500)*") and "%" not in row[8]


def test_fronts_hint_says_what_to_run_or_that_no_face_was_found():
    import pandas as pd

    from fastface.evaluation.report_format import fronts_hint

    no_id = pd.DataFrame({"id_n_rows": [0], "id_n": [0], "clip_n_rows": [4], "clip_n": [4], "n_ok": [4]})
    assert ("`fastface evaluate --store S --protocol release --metrics id` first"
            in fronts_hint(no_id, "S", "release"))
    only_id = pd.DataFrame({"id_n_rows": [4], "id_n": [3], "n_ok": [4]})
    assert "--metrics clip,ae,ir" in fronts_hint(only_id, "S", "corrected")
    no_faces = pd.DataFrame({"id_n_rows": [2, 2], "id_n": [0, 0], "clip_n_rows": [2, 2], "clip_n": [2, 2],
                             "ffc": [2, 2], "n_ok": [2, 2]})
    assert "the runs have no detected faces" in fronts_hint(no_faces, "S", "corrected") and "FFC = 4 of 4" in \
        fronts_hint(no_faces, "S", "corrected")
