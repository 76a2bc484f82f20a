"""The real commands on the exact local Hub mirror, without --tiny (issue 23): what a GPU user types,
on tiny models written in the real repositories' trees (tests/fixtures/hub_mirror.py) and a buffalo_l
pack of tiny ONNX graphs that insightface itself loads (tests/fixtures/buffalo_stub.py).

Every checkpoint: ``generate`` writes its image; ``capture`` stores maps; ``evaluate`` scores them.
Failures: no buffalo_l, no FaceID file, an empty mirror: one message each, nothing written."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastface.cli import main  # noqa: E402
from tests.fixtures.buffalo_stub import write_buffalo_stub  # noqa: E402
from tests.fixtures.hub_mirror import build_hub_mirror  # noqa: E402

CHECKPOINTS = ("hyper", "lightning", "lcm", "turbo")
SIZE = ("--height", "64", "--width", "64")


@pytest.fixture(scope="module")
def mirror() -> Path:
    """The full mirror (fp32 and fp16 files) with buffalo_l beside it, where --weights-root finds it."""
    root = build_hub_mirror()
    if not (root / "insightface" / "models" / "buffalo_l" / "det_10g.onnx").is_file():
        write_buffalo_stub(root / "insightface", embedding_dim=128)  # the mirror's adapter is 128-d
    return root


@pytest.fixture(autouse=True)
def no_real_home(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "no-insightface-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setattr("fastface.models.weights.hub_cache_dir", lambda cache_dir=None: Path(cache_dir or tmp_path / "hf"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("id") / "astronaut.png"
    Image.fromarray(astronaut()).save(path)
    return path


def generate(root, photo, out, *extra) -> int:
    return main(["generate", "--weights-root", str(root), "--id-image", str(photo), "--prompt", "a photo of a person",
                 "--out", str(out), "--device", "cpu", "--preset", "ff-am2", *SIZE, *extra])


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_generate_on_the_mirror_with_the_default_face_backend(mirror, photo, tmp_path, capsys, checkpoint):
    out = tmp_path / f"{checkpoint}.png"
    rc = generate(mirror, photo, out, "--checkpoint", checkpoint)
    err = capsys.readouterr().err
    assert rc == 0, err
    image = Image.open(out)
    assert image.size == (64, 64)
    assert np.asarray(image).std() > 0  # not a constant (a NaN decodes to black)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["checkpoint"]["name"] == checkpoint and meta["tiny"] is False
    assert meta["face_backend"] == "insightface" and meta["clip_crop_order"] == "bgr"
    assert (meta["height"], meta["width"]) == (64, 64)


def test_generate_with_dlib_and_an_fp16_only_mirror(photo, tmp_path, capsys):
    fp16_only = build_hub_mirror(fp32=False, fp16=True, projection_dim_in_vision_config=False)
    assert not (fp16_only / "stabilityai/stable-diffusion-xl-base-1.0/unet/diffusion_pytorch_model.safetensors").exists()
    out = tmp_path / "dlib.png"
    rc = generate(fp16_only, photo, out, "--checkpoint", "hyper", "--face-backend", "dlib")
    assert rc == 0, capsys.readouterr().err
    assert Image.open(out).size == (64, 64)
    assert json.loads(out.with_suffix(".json").read_text())["face_backend"] == "dlib"


def test_capture_and_evaluate_every_checkpoint_on_the_mirror(mirror, photo, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.png").write_bytes(photo.read_bytes())
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a photo of a person\n")
    store = tmp_path / "store"
    rc = main(["capture", "--photos", str(photos), "--prompts", str(prompts), "--store", str(store),
               "--weights-root", str(mirror), "--device", "cpu", "--checkpoints", ",".join(CHECKPOINTS),
               "--presets", "baseline", "--capture", "head_mean", "--no-compact", *SIZE])
    err = capsys.readouterr().err
    assert rc == 0, err
    con = duckdb.connect()
    try:
        data = str(store / "data" / "run=*" / "sample=*")
        rows = con.execute(f"select s.run_id, s.status, s.width, s.height, count(m.site) from "
                           f"read_parquet('{data}/samples.parquet', hive_partitioning=false) s "
                           f"join read_parquet('{data}/maps.parquet', hive_partitioning=false) m using (run_id) "
                           f"group by all order by 1").fetchall()
    finally:
        con.close()
    assert [r[0].split("-")[0] for r in rows] == sorted(CHECKPOINTS)
    assert all(r[1:4] == ("ok", 64, 64) and r[4] > 0 for r in rows), rows
    rc = main(["evaluate", "--store", str(store), "--weights-root", str(mirror), "--device", "cpu",
               "--metrics", "id,ffc,face-size", "--no-progress"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    con = duckdb.connect()
    try:
        metrics = con.execute(
            f"select name, count(*), min(model) from read_parquet('{store}/data/**/metrics*.parquet', "
            "union_by_name=true) where model like 'insightface/buffalo_l@%' group by 1 order by 1").fetchall()
    finally:
        con.close()
    names = {name: n for name, n, _ in metrics}
    assert names.get("face_detected") == len(CHECKPOINTS), metrics


def partial_mirror(mirror: Path, tmp: Path, *, drop: tuple[str, ...]) -> Path:
    """A mirror of links to the full one, without the repositories (or files) in ``drop``."""
    out = tmp / "partial"
    for repo in ("stabilityai/stable-diffusion-xl-base-1.0", "ByteDance/Hyper-SD", "h94/IP-Adapter-FaceID",
                 "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "insightface"):
        if repo in drop:
            continue
        (out / repo).parent.mkdir(parents=True, exist_ok=True)
        (out / repo).symlink_to(mirror / repo, target_is_directory=True)
    return out


def one_message(err: str, command: str) -> list[str]:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("loading ")]
    assert lines[0].startswith(f"fastface {command}: error: "), err
    assert all(line.startswith("  - ") for line in lines[1:]), err
    return lines[1:]


def test_missing_buffalo_l_is_one_message_and_nothing_is_written(mirror, photo, tmp_path, capsys):
    root = partial_mirror(mirror, tmp_path, drop=("insightface",))
    out = tmp_path / "out" / "x.png"
    rc = generate(root, photo, out, "--checkpoint", "hyper")
    bullets = one_message(capsys.readouterr().err, "generate")
    assert rc == 2 and len(bullets) == 1
    assert "buffalo_l" in bullets[0] and str(root / "insightface" / "models" / "buffalo_l") in bullets[0]
    assert "--face-backend dlib" in bullets[0] and not out.parent.exists()


def test_missing_faceid_file_stops_capture_before_the_store_exists(mirror, photo, tmp_path, capsys):
    root = partial_mirror(mirror, tmp_path, drop=("h94/IP-Adapter-FaceID",))
    store = tmp_path / "store"
    prompts = tmp_path / "p.txt"
    prompts.write_text("a photo of a person\n")
    rc = main(["capture", "--photos", str(photo.parent), "--prompts", str(prompts), "--store", str(store),
               "--weights-root", str(root), "--device", "cpu", "--presets", "baseline", *SIZE])
    bullets = one_message(capsys.readouterr().err, "capture")
    assert rc == 2 and len(bullets) == 1
    assert "ip-adapter-faceid-plusv2_sdxl.bin" in bullets[0] and "--faceid-weight" in bullets[0]
    assert not store.exists()


def test_an_empty_mirror_names_every_component(photo, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = generate(empty, photo, tmp_path / "x.png", "--checkpoint", "turbo")
    bullets = one_message(capsys.readouterr().err, "generate")
    assert rc == 2
    named = [b.split(" [")[0].removeprefix("  - ") for b in bullets]
    assert named == ["SDXL base", "turbo checkpoint", "FaceID-Plus-v2 adapter", "CLIP ViT-H/14 image encoder",
                     "face models: insightface buffalo_l"]
    assert all(str(empty) in b for b in bullets)


def test_a_faceid_file_of_another_kind_is_one_line_and_nothing_is_written(mirror, photo, tmp_path, capsys):
    out = tmp_path / "out" / "x.png"
    rc = generate(mirror, photo, out, "--checkpoint", "hyper", "--faceid-weight", "ip-adapter-faceid_sdxl.bin")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fastface generate:")]  # not the loading bars
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "ip-adapter-faceid_sdxl.bin" in lines[0] and "ip-adapter-faceid-plusv2_sdxl.bin" in lines[0]
    assert not out.parent.exists()


def as_hf_cache(mirror: Path, cache: Path) -> Path:
    """The mirror's repositories in the Hugging Face cache layout (models--org--name/refs/main and
    snapshots/<commit>/ whose files link to blobs/, as huggingface_hub writes them)."""
    commit = "5f0c1a2b" * 5
    for repo in ("stabilityai/stable-diffusion-xl-base-1.0", "ByteDance/Hyper-SD", "h94/IP-Adapter-FaceID",
                 "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"):
        folder = cache / ("models--" + repo.replace("/", "--"))
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(commit)
        for i, f in enumerate(p for p in sorted((mirror / repo).rglob("*")) if p.is_file()):
            blob = folder / "blobs" / f"{i:04d}"
            blob.parent.mkdir(exist_ok=True)
            blob.write_bytes(f.read_bytes())
            link = folder / "snapshots" / commit / f.relative_to(mirror / repo)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(blob)
    return cache


def test_generate_from_the_hugging_face_cache_offline(mirror, photo, tmp_path, capsys, monkeypatch):
    cache = as_hf_cache(mirror, tmp_path / "hf")
    out = tmp_path / "cached.png"
    rc = main(["generate", "--cache-dir", str(cache), "--id-image", str(photo), "--prompt", "a photo of a person",
               "--out", str(out), "--device", "cpu", "--face-backend", "dlib", *SIZE])
    assert rc == 0, capsys.readouterr().err
    assert Image.open(out).size == (64, 64)
    rc = main(["weights", "check", "--cache-dir", str(cache), "--face-backend", "dlib", "--device", "cpu"])
    table = capsys.readouterr().out
    assert rc == 0 and table.count(" cache ") == 22, table  # 18 base files, the LoRA, the .bin, laion's 2
