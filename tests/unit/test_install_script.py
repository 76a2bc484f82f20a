"""scripts/install.sh and scripts/python_env.sh: which Python they install into, and the CLI link.

Nothing is installed here: `install.sh --check` only reports, fake interpreters stand in for
an externally managed or too-old Python, and the link test uses a fake venv and $HOME.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def check(python: str, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHON": python, "FASTFACE_VENV": str(tmp_path / "venv"), **env}
    e.pop("VIRTUAL_ENV", None)
    return subprocess.run(["bash", "scripts/install.sh", "--check"], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=60)


def fake_python(tmp_path: Path, probe: str) -> str:
    """An 'interpreter' that answers python_env.sh's probe with a fixed line."""
    p = tmp_path / "fakebin" / "python3"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"#!/bin/sh\ncat >/dev/null\necho '{probe}'\n")
    p.chmod(0o755)
    return str(p)


def test_check_names_this_python_or_its_venv(tmp_path):
    r = check(sys.executable, tmp_path)
    assert r.returncode == 0, r.stderr
    in_venv = sys.prefix != sys.base_prefix
    managed = (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file()
    if in_venv:
        assert "would install into the virtual environment of" in r.stdout
    elif managed:
        assert f"a new virtual environment {tmp_path / 'venv'}" in r.stdout
    else:
        assert f"would install into {sys.executable} (not externally managed)" in r.stdout, r.stdout


def test_check_inside_a_venv_installs_there(tmp_path):
    venv = tmp_path / "active"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    r = check(str(venv / "bin" / "python"), tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"would install into the virtual environment of {venv / 'bin' / 'python'}" in r.stdout, r.stdout
    assert not (tmp_path / "venv").exists()


def test_externally_managed_python_gets_a_venv_in_the_repo_by_default(tmp_path):
    fake = fake_python(tmp_path, "managed 3.11 ok /usr/bin/python3")
    r = check(fake, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"install.sh: would install into a new virtual environment {tmp_path / 'venv'} "
                                "(/usr/bin/python3 is externally managed)")
    e = {k: v for k, v in os.environ.items() if k != "FASTFACE_VENV"}
    r = subprocess.run(["bash", "scripts/install.sh", "--check"], cwd=ROOT, env={**e, "PYTHON": fake},
                       capture_output=True, text=True, timeout=60)
    assert f"{ROOT / '.venv'}" in r.stdout  # the default place: .venv in the repository
    assert not (tmp_path / "venv").exists()  # --check makes nothing


@pytest.mark.skipif(not (Path("/usr/lib") / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                         / "EXTERNALLY-MANAGED").is_file() or not Path("/usr/bin/python3").is_file(),
                    reason="no externally managed Debian /usr/bin/python3 here")
def test_check_detects_debians_system_python(tmp_path):
    r = check("/usr/bin/python3", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "a new virtual environment" in r.stdout and "is externally managed" in r.stdout


def test_too_old_python_is_a_clear_error(tmp_path):
    r = check(fake_python(tmp_path, "plain 3.8 old /opt/py38/bin/python3.8"), tmp_path)
    assert r.returncode != 0
    assert "/opt/py38/bin/python3.8 is Python 3.8; FastFace Workbench needs Python >= 3.10" in r.stderr
    r = check(str(tmp_path / "no-such-python"), tmp_path)
    assert r.returncode != 0 and "no Python interpreter" in r.stderr and "PYTHON=" in r.stderr


def _link(tmp_path: Path, venv: Path) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": f"{home / '.local' / 'bin'}:/usr/bin:/bin"}  # no /usr/local/bin
    return subprocess.run(["bash", "-c", f"source scripts/python_env.sh && fastface_link_cli '{venv}' "
                                         "&& command -v fastface && fastface"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_venv_cli_is_linked_onto_path_but_never_over_a_file(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "fastface").write_text("#!/bin/sh\necho from-the-venv\n")
    (venv / "bin" / "fastface").chmod(0o755)
    local_bin = tmp_path / "home" / ".local" / "bin"
    local_bin.mkdir(parents=True)
    r = _link(tmp_path, venv)
    assert r.returncode == 0, r.stderr
    assert (local_bin / "fastface").resolve() == (venv / "bin" / "fastface").resolve()
    assert r.stdout.split() == [str(local_bin / "fastface"), "from-the-venv"]
    assert "linked" in r.stderr
    (local_bin / "fastface").unlink()
    (local_bin / "fastface").write_text("#!/bin/sh\necho someone-elses\n")
    (local_bin / "fastface").chmod(0o755)
    r = _link(tmp_path, venv)
    assert (local_bin / "fastface").read_text().endswith("someone-elses\n")  # left alone
    assert f"run '. {venv}/bin/activate' first" in r.stderr


def test_gpu_install_plan_leaves_exactly_one_onnxruntime_build(tmp_path):
    """`install.sh --gpu` (its commands printed with FASTFACE_INSTALL_PLAN=1): torch first, the
    requirements without the CPU onnxruntime, that build removed, then requirements-gpu.txt's
    onnxruntime-gpu pinned at the CPU build's version."""
    import re

    e = {**os.environ, "PYTHON": sys.executable, "FASTFACE_INSTALL_PLAN": "1", "FASTFACE_VENV": str(tmp_path / "v")}
    r = subprocess.run(["bash", "scripts/install.sh", "--gpu"], cwd=ROOT, env=e, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    commands = [line for line in lines if line.startswith("pip ")]
    assert commands[0] == "pip install -q torch==2.13.0"
    requirements = [line.split(": ", 1)[1] for line in lines if line.startswith("  requirement: ")]
    assert "insightface==2.1" in requirements and "diffusers==0.42.1" in requirements
    assert not [q for q in requirements if re.match(r"onnxruntime\b(?!-)", q)]
    uninstall = commands.index("pip uninstall -y -q onnxruntime")
    gpu = commands.index("pip install -q -r requirements-gpu.txt")
    assert commands.index(next(c for c in commands if c.startswith("pip install -q -r /"))) < uninstall < gpu
    cpu_pin = next(q for q in (ROOT / "requirements.txt").read_text().splitlines() if q.startswith("onnxruntime=="))
    gpu_pins = [q for q in (ROOT / "requirements-gpu.txt").read_text().splitlines() if q and not q.startswith("#")]
    assert gpu_pins == [cpu_pin.replace("onnxruntime==", "onnxruntime-gpu==")]


def test_onnxruntime_check_names_the_builds_and_the_fix():
    r = subprocess.run([sys.executable, "scripts/check_onnxruntime.py"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    from importlib import metadata

    names = {(d.metadata["Name"] or "").lower() for d in metadata.distributions()}
    expected = [b for b in ("onnxruntime", "onnxruntime-gpu") if b in names]
    assert f"onnxruntime builds installed: {', '.join(expected) or 'none'}" in r.stdout
    assert r.returncode == (0 if expected == ["onnxruntime-gpu"] else 1)
    if r.returncode:
        assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install -r requirements-gpu.txt" in r.stderr
