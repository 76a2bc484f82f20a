"""The pre-flight (fastface/models/weights.py) and ``fastface weights check|download``: which files each
command needs (against the real repositories' trees written out here by hand), where they are found
(local folder, --weights-root mirror, Hugging Face cache layout), and one message naming every
missing component before anything is loaded or written."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastface.models import weights as W  # noqa: E402
from fastface.cli import main  # noqa: E402

BASE = "stabilityai/stable-diffusion-xl-base-1.0"
TOKENIZER = ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]

# The files of the real repositories a fp16 (CUDA) Hyper run reads, written out from the repos' trees.
HYPER_FP16 = {
    BASE: ["model_index.json", "scheduler/scheduler_config.json",
           "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
           "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors",
           *[f"tokenizer/{f}" for f in TOKENIZER], *[f"tokenizer_2/{f}" for f in TOKENIZER],
           "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
           "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"],
    "ByteDance/Hyper-SD": ["Hyper-SDXL-4steps-lora.safetensors"],
    "h94/IP-Adapter-FaceID": ["ip-adapter-faceid-plusv2_sdxl.bin"],
    "laion/CLIP-ViT-H-14-laion2B-s32B-b79K": ["config.json", "model.safetensors"],
}


def touch_repo(root: Path, files: dict[str, list[str]], *, skip: tuple[str, ...] = ()) -> None:
    for repo, names in files.items():
        for name in names:
            if f"{repo}/{name}" in skip:
                continue
            p = root / repo / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x" * 7)


def buffalo(root: Path) -> Path:
    folder = root / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    for f in ("det_10g.onnx", "w600k_r50.onnx", "1k3d68.onnx", "2d106det.onnx", "genderage.onnx"):
        (folder / f).write_bytes(b"onnx")
    return root


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No real ~/.insightface or HF cache of this machine leaks into a test."""
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "no-insightface-home"))
    monkeypatch.setattr(W, "hub_cache_dir", lambda cache_dir=None: Path(cache_dir or tmp_path / "empty-hf-cache"))


def preferred(needs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in needs:
        if n.kind == "hub":
            out.setdefault(n.repo, []).extend(n.preferred())
    return out


def test_generation_needs_are_the_real_repositories_files():
    needs = W.generation_needs(["hyper"], fp16=True, face_backend="insightface")
    assert {k: sorted(v) for k, v in preferred(needs).items()} == {k: sorted(v) for k, v in HYPER_FP16.items()}
    face = [n for n in needs if n.kind == "insightface"]
    assert len(face) == 1 and face[0].preferred() == ["det_10g.onnx", "w600k_r50.onnx"]
    # fp32 (CPU): the same files, the fp32 names first, the fp16 ones accepted
    unet = next(alts for alts in W.base_need(W.get_checkpoint("hyper"), fp16=False).files if alts[0].startswith("unet/d"))
    assert unet == ("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors")


def test_needs_per_checkpoint_kind():
    lightning = preferred(W.generation_needs(["lightning"], steps=8, fp16=True, face_backend=None))
    assert lightning["ByteDance/SDXL-Lightning"] == ["sdxl_lightning_8step_unet.safetensors"]
    assert "unet/config.json" in lightning[BASE]  # the UNet config, not its weights
    assert not any(f.startswith("unet/diffusion") for f in lightning[BASE])
    turbo = preferred(W.generation_needs(["turbo"], fp16=True, face_backend=None))
    assert turbo["stabilityai/sdxl-turbo"] == ["unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
                                               "scheduler/scheduler_config.json"]
    lcm = preferred(W.generation_needs(["lcm"], face_backend=None))
    assert lcm["latent-consistency/lcm-lora-sdxl"] == ["pytorch_lora_weights.safetensors"]
    both = W.generation_needs(["hyper", "lightning"], fp16=True, face_backend=None)
    assert sum(n.repo == BASE for n in both) == 1  # the base once, with the union of its files
    with pytest.raises(ValueError, match="released for"):
        W.generation_needs(["hyper"], steps=3)


def test_a_complete_mirror_is_found_and_every_missing_file_is_named(tmp_path):
    mirror = tmp_path / "mirror"
    touch_repo(mirror, HYPER_FP16)
    buffalo(mirror / "insightface")
    needs = W.generation_needs(["hyper"], fp16=True)
    found = W.preflight(needs, weights_root=mirror, online=False)
    assert [f.where for f in found] == ["mirror"] * 4 + ["local"]
    assert found[0].paths["unet/diffusion_pytorch_model.fp16.safetensors"] == str(
        mirror / BASE / "unet/diffusion_pytorch_model.fp16.safetensors")

    gone = (f"{BASE}/vae/diffusion_pytorch_model.fp16.safetensors", "h94/IP-Adapter-FaceID/ip-adapter-faceid-plusv2_sdxl.bin")
    partial = tmp_path / "partial"
    touch_repo(partial, HYPER_FP16, skip=gone)
    with pytest.raises(W.WeightsMissing) as e:
        W.preflight(needs, weights_root=partial, online=False, command="fastface generate")
    text = str(e.value)
    assert text.startswith("fastface generate: 3 component(s) missing")
    bullets = [line for line in text.splitlines() if line.startswith("  - ")]
    assert len(bullets) == 3
    assert "vae/diffusion_pytorch_model.fp16.safetensors or vae/diffusion_pytorch_model.safetensors" in bullets[0]
    assert str(partial / BASE) in bullets[0]
    assert "ip-adapter-faceid-plusv2_sdxl.bin" in bullets[1] and "--faceid-weight" in bullets[1]
    assert "buffalo_l" in bullets[2] and "--face-backend dlib" in bullets[2]
    assert str(partial / "insightface" / "models" / "buffalo_l") in bullets[2]


def test_an_fp16_only_mirror_satisfies_an_fp32_run(tmp_path):
    touch_repo(tmp_path, HYPER_FP16)  # only the .fp16. files, as `--include "*.fp16.*"` downloads give
    found = W.preflight(W.generation_needs(["hyper"], fp16=False, face_backend=None), weights_root=tmp_path,
                        online=False)
    assert "text_encoder/model.fp16.safetensors" in found[0].paths


def write_hf_cache(cache: Path, repo: str, files: list[str], commit: str = "0123abcd" * 5) -> Path:
    """The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<commit>/..., blobs/}."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    for i, name in enumerate(files):
        blob = folder / "blobs" / f"blob{i}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(b"y" * 11)
        p = snap / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(blob)
    return snap


def test_files_in_the_hugging_face_cache_are_found_there(tmp_path):
    cache = tmp_path / "hf"
    snaps = {repo: write_hf_cache(cache, repo, files) for repo, files in HYPER_FP16.items()}
    found = W.preflight(W.generation_needs(["hyper"], fp16=True, face_backend=None), cache_dir=cache, online=False)
    assert [f.where for f in found] == ["cache"] * 4
    assert [f.folder for f in found] == [str(snaps[f.need.repo]) for f in found]
    assert found[0].sizes["model_index.json"] == 11
    assert W.cache_snapshot(BASE, cache) == snaps[BASE]
    # a mirror folder that exists is authoritative; an absent one falls through to the cache
    mirror = tmp_path / "mirror"
    touch_repo(mirror, {"ByteDance/Hyper-SD": HYPER_FP16["ByteDance/Hyper-SD"]})
    found = W.preflight(W.generation_needs(["hyper"], fp16=True, face_backend=None), weights_root=mirror,
                        cache_dir=cache, online=False)
    assert [f.where for f in found] == ["cache", "mirror", "cache", "cache"]


def test_offline_the_hub_is_not_asked_and_the_message_says_so(tmp_path):
    found = W.resolve(W.generation_needs(["hyper"], face_backend=None), cache_dir=tmp_path, online=False)
    assert all(not f.ok for f in found)
    assert "not asked (--offline)" in " ".join(found[0].looked)
    assert W.download_plan(found)[0] == (found[0].need, "model_index.json")


def test_insightface_root_precedence(tmp_path, monkeypatch):
    explicit, mirror, home = buffalo(tmp_path / "explicit"), tmp_path / "mirror", buffalo(tmp_path / "home")
    buffalo(mirror / "insightface")
    monkeypatch.setenv("INSIGHTFACE_HOME", str(home))
    assert W.find_insightface_root(explicit, mirror) == explicit
    assert W.find_insightface_root(None, mirror) == mirror / "insightface"
    assert W.find_insightface_root(None, tmp_path / "nothing") == home
    (home / "models" / "buffalo_l" / "w600k_r50.onnx").unlink()  # a partial pack is no pack
    assert W.find_insightface_root(None, None) is None


def test_weights_check_cli_table_and_exit_status(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    touch_repo(mirror, HYPER_FP16)
    buffalo(mirror / "insightface")
    rc = main(["weights", "check", "--weights-root", str(mirror), "--device", "cuda", "--offline"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "24 files found" in out and "0 missing" in out
    assert "insightface will run on" in out
    (mirror / "ByteDance/Hyper-SD/Hyper-SDXL-4steps-lora.safetensors").unlink()
    rc = main(["weights", "check", "--weights-root", str(mirror), "--device", "cuda", "--offline"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "MISSING" in captured.out and "Hyper-SDXL-4steps-lora.safetensors" in captured.out
    assert "1 component(s) missing" in captured.err and "Traceback" not in captured.err


def test_weights_download_offline_lists_the_files_and_fetches_nothing(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    touch_repo(mirror, {k: v for k, v in HYPER_FP16.items() if k != "ByteDance/Hyper-SD"})
    args = ["weights", "download", "--weights-root", str(mirror), "--device", "cuda", "--face-backend", "none",
            "--offline"]
    rc = main(args + ["--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and "1 file(s) to fetch" in out and "ByteDance/Hyper-SD/Hyper-SDXL-4steps-lora.safetensors" in out
    before = sorted(p for p in mirror.rglob("*"))
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 1 and "nothing was fetched" in captured.err
    assert sorted(p for p in mirror.rglob("*")) == before


def test_generate_without_buffalo_l_fails_before_loading_with_one_message(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    touch_repo(mirror, HYPER_FP16)  # empty stand-in files: loading them would fail, the pre-flight must stop first
    photo = tmp_path / "id.png"
    photo.write_bytes(b"not read")
    out = tmp_path / "out" / "x.png"
    rc = main(["generate", "--weights-root", str(mirror), "--id-image", str(photo), "--prompt", "a photo",
               "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "1 component(s) missing" in err and "buffalo_l" in err and "--face-backend dlib" in err
    assert not out.parent.exists()
