"""scripts/gpu-check.sh (issue 14, part 4) without a GPU: its CUDA refusal, its argument handling,
its install step against a local folder of wheels, and its --cpu-dry-run table.  No timing is
asserted: the figures are printed, never compared."""

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"
pytestmark = [pytest.mark.timeout(600)]


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=timeout)


def make_wheel(folder: Path, name: str = "ffprobe_pkg", version: str = "0.1") -> Path:
    """A minimal pure-Python wheel (one module) that pip installs offline."""
    files = {f"{name}/__init__.py": b"VALUE = 42\n",
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
                     for p, d in files.items()) + f"{name}-{version}.dist-info/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
        z.writestr(f"{name}-{version}.dist-info/RECORD", record)
    return path


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal without CUDA")
def test_without_cuda_it_stops_with_a_clear_message():
    r = run("--budget-s", "10")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no CUDA device" in r.stderr and "--cpu-dry-run" in r.stderr


def test_bad_arguments_are_refused():
    r = run("--cpu-dry-run", "--only", "nope")
    assert r.returncode == 2 and "unknown step" in r.stderr
    r = run("--cpu-dry-run", "--budget-s", "0")
    assert r.returncode == 2 and "--budget-s" in r.stderr
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-wheels.sh")], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_missing_packages_come_from_the_wheel_folder(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    need = ("--require", "ffprobe_pkg=ffprobe_pkg")
    r = run("--cpu-dry-run", "--install-only", *need, "--wheels", str(tmp_path / "none"))
    assert r.returncode == 3 and "scripts/gpu-wheels.sh" in r.stderr          # no folder: says how to make one
    r = run("--cpu-dry-run", "--install-only", *need, "--wheels", str(wheels), "--target", str(target))
    assert r.returncode == 3 and "still missing: ['ffprobe_pkg']" in r.stderr  # folder without the wheel
    make_wheel(wheels)
    r = run("--cpu-dry-run", "--install-only", *need, "--wheels", str(wheels), "--target", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installing ['ffprobe_pkg']" in r.stdout and (target / "ffprobe_pkg" / "__init__.py").exists()


def test_cpu_dry_run_prints_the_table(tmp_path):
    out = tmp_path / "out"
    r = run("--cpu-dry-run", "--only", "tests/gpu,am2 precision", "--budget-s", "240", "--out", str(out), timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = (out / "table.txt").read_text()
    assert table in r.stdout and "GPU check on CPU (dry run, tiny sizes)" in table
    assert "tests/gpu" in table and "am2 precision" in table and "AM2 fp16 vs fp32" in table
    assert "tests/gpu: passed / failed / skipped" in table                     # skipped on CPU


def test_real_weights_step_dry_run_on_the_mirror(tmp_path):
    """The 'real weights' step on the exact Hub mirror (CPU, 64 px, hyper and turbo): one image per
    checkpoint with a head-mean capture at every site, and the precision comparison of every
    decoupled block (float32 against float64 on CPU)."""
    import json

    out = tmp_path / "out"
    r = run("--cpu-dry-run", "--only", "real weights", "--budget-s", "300", "--out", str(out), timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    figures = json.loads((out / "real.json").read_text())["checkpoints"]
    assert sorted(figures) == ["hyper", "turbo"]

    for name, v in figures.items():
        assert (v["width"], v["height"], v["sites"]) == (64, 64, 17), v
        assert v["maps"] == 17 * 4 * 4 * 2  # sites x steps x ID tokens x pre/post (head-mean)
        assert v["finite_latents"] and v["image_std"] > 0
        assert (out / "real-images" / f"{name}.png").is_file()
    cmp_ = figures["hyper"]["fp16_vs_fp32"]
    assert cmp_["blocks"] == 17 and cmp_["max_rel"] < 1e-4  # float32 vs float64 of the same noise
    table = (out / "table.txt").read_text()
    assert "real hyper: sites / maps captured, faces, ID sim" in table and "real turbo" in table


def test_real_weights_step_is_skipped_without_the_weights(tmp_path):
    import json

    r = subprocess.run([sys.executable, "tests/benchmarks/real_weights_check.py", "--weights-root",
                        str(tmp_path / "empty"), "--cache-dir", str(tmp_path / "hf"), "--json", str(tmp_path / "r.json"),
                        "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "INSIGHTFACE_HOME": str(tmp_path / "no-home")})
    assert r.returncode == 0, r.stderr
    assert "real weights: skipped, not all present here" in r.stdout
    skipped = json.loads((tmp_path / "r.json").read_text())["skipped"]
    assert "SDXL base" in skipped and "buffalo_l" in skipped
