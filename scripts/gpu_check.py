"""The prepared GPU check (issue 14, part 4); run through scripts/gpu-check.sh.

On a bare CUDA machine with Python + PyTorch and no network it
  1. checks CUDA (exit 2 with a message when there is none, unless --cpu-dry-run),
  2. installs the missing packages from a local folder of wheels (pip --no-index --find-links),
  3. runs tests/gpu (pytest) and the --full benchmarks (pipeline per preset, capture overhead
     summaries-only / head-mean at all sites, peak GPU memory, AM2 fp16 vs fp32 agreement),
     each step in a subprocess with its share of the time budget (default 8 minutes),
     and, when the real weights are present (--weights-root / the HF cache; skipped otherwise),
     one image per checkpoint at its resolution with a head-mean capture at all sites and the
     float16-vs-float32 outputs of every decoupled block (tests/benchmarks/real_weights_check.py),
  4. prints one table: every figure measured, the targets beside them (capture overhead
     <= 5 % summaries-only, <= 15 % head-mean maps at all sites).  No timed assertion: a
     figure over its target is printed as such and does not change the exit status.
--cpu-dry-run runs the same steps on CPU at tiny sizes (the tiny world), to test the script.
--download-wheels DIR (scripts/gpu-wheels.sh) fills the folder on a machine with network.
Exit status: 0 when every step ran and passed, 1 when a step failed or timed out, 2 when
CUDA is missing, 3 when packages are missing and cannot be installed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: import name -> distribution name of what the GPU tests and benchmarks import (versions:
#: requirements.txt); the machine's own torch is used as is
NEEDED = {"diffusers": "diffusers", "transformers": "transformers", "accelerate": "accelerate", "peft": "peft",
          "safetensors": "safetensors", "huggingface_hub": "huggingface-hub", "duckdb": "duckdb",
          "pyarrow": "pyarrow", "skimage": "scikit-image", "PIL": "pillow", "pytest": "pytest",
          "pytest_timeout": "pytest-timeout", "dlib": "dlib-bin"}
#: the targets printed beside the capture figures (issue 14; ratios to no-probe time)
TARGETS = {"summaries_only": 1.05, "head_mean": 1.15}
#: share of the budget of each step (the rest is slack for start-up and the table)
SHARES = {"tests/gpu": 0.16, "pipeline": 0.16, "capture": 0.28, "am2 precision": 0.06, "real weights": 0.26}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def pins(requirements: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """{distribution (lower case): 'name==version'} of the pinned lines of requirements.txt."""
    out = {}
    for line in requirements.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            out[m[1].lower()] = f"{m[1]}=={m[2]}"
    return out


def missing(needed: dict[str, str]) -> dict[str, str]:
    return {mod: dist for mod, dist in needed.items() if importlib.util.find_spec(mod) is None}


def install(wheels: Path, dists: list[str], target: Path | None) -> subprocess.CompletedProcess:
    """pip install --no-index --find-links WHEELS: the resolver keeps what is installed and takes
    the rest from the folder (into ``target`` with --no-deps when given: a read-only env)."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
           "--disable-pip-version-check", "--no-cache-dir"]
    if target is not None:
        cmd += ["--no-deps", "--target", str(target)]
        dists = dists + [str(w) for w in sorted(wheels.glob("*.whl"))]  # the folder holds the missing deps
    return subprocess.run(cmd + dists, capture_output=True, text=True)


def download(folder: Path, dists: list[str], python_version: str) -> int:
    """pip download the distributions and their dependencies for CPython ``python_version`` on
    manylinux x86-64 (binary wheels only) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", python_version,
           "--implementation", "cp", "-d", str(folder)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    print("+", " ".join(cmd + dists), flush=True)
    return subprocess.call(cmd + dists)


def _step(name: str, cmd: list[str], budget_s: float, env: dict) -> dict:
    t0 = time.perf_counter()
    print(f"\n=== {name}: {' '.join(cmd)} (at most {budget_s:.0f} s)", flush=True)
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, timeout=max(budget_s, 5), capture_output=True, text=True)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    print(out[-4000:], flush=True)
    return {"name": name, "rc": rc, "seconds": time.perf_counter() - t0, "output": out}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def table(results: list[dict], figures: dict, device: str, budget_s: float, wall_s: float) -> str:
    rows = [("step", "status", "seconds")]
    for r in results:
        rows.append((r["name"], "ok" if r["rc"] == 0 else f"FAILED ({r['rc']})", f"{r['seconds']:.1f}"))
    lines = [f"GPU check on {device}; budget {budget_s:.0f} s, took {wall_s:.0f} s"]
    w = [max(len(str(r[i])) for r in rows) for i in range(3)]
    lines += ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.append("")
    lines.append(f"{'figure':58s} {'measured':>12s}  target")
    for name, value, target in figures_rows(figures):
        lines.append(f"{name:58s} {value:>12s}  {target}")
    return "\n".join(lines)


def figures_rows(f: dict) -> list[tuple[str, str, str]]:
    out = []
    tests = f.get("tests")
    if tests:
        out.append(("tests/gpu: passed / failed / skipped", f"{tests['passed']}/{tests['failed']}/{tests['skipped']}",
                    "all pass on CUDA"))
    for case, v in f.get("pipeline", {}).get("cases", {}).items():
        out.append((f"pipeline {case}: ms/step (x baseline)", f"{v['ms_per_step']:.1f} ({v['ratio']:.2f})", ""))
        if v.get("peak_gib") is not None:
            out.append((f"pipeline {case}: peak GPU memory GiB", f"{v['peak_gib']:.2f}", ""))
    if f.get("capture", {}).get("n_sites"):
        out.append(("capture: probed sites (all of the model)", str(f["capture"]["n_sites"]), "70 on full-size SDXL"))
    for preset, cases in f.get("capture", {}).get("presets", {}).items():
        for case, v in cases.items():
            if case == "no probe":
                continue
            target = TARGETS.get(case)
            verdict = "" if target is None else (f"<= {target:.2f}: " + ("met" if v["ratio"] <= target else "NOT met"))
            out.append((f"capture {preset} {case} ({v['maps']} maps): x no-probe", f"{v['ratio']:.3f}", verdict))
            if v.get("peak_gib") is not None:
                out.append((f"capture {preset} {case}: peak GPU memory GiB", f"{v['peak_gib']:.2f}", ""))
    real = f.get("real", {})
    if real.get("skipped"):
        out.append(("real weights", "skipped", "weights not all present (see the step's output)"))
    for name, v in real.get("checkpoints", {}).items():
        sim = "-" if v.get("id_sim") is None else f"{v['id_sim']:.3f}"
        out.append((f"real {name}: {v['width']}x{v['height']} s/image (load s)", f"{v['generate_s']:.2f} ({v['load_s']:.0f})",
                    ""))
        out.append((f"real {name}: sites / maps captured, faces, ID sim", f"{v['sites']}/{v['maps']} {v['faces']} {sim}",
                    "70 sites; finite latents" + ("" if v.get("finite_latents") else ": NOT finite")))
        cmp_ = v.get("fp16_vs_fp32")
        if cmp_ and cmp_.get("max_rel") is not None:
            out.append((f"real {name}: fp16 vs fp32 block outputs ({cmp_['blocks']}): max (median) rel",
                        f"{cmp_['max_rel']:.1e} ({cmp_['median_rel']:.1e})", "informational"))
    am2 = f.get("am2", {})
    for shape, v in am2.get("shapes", {}).items():
        out.append((f"AM2 fp16 vs fp32 {shape}: max |diff| (rel)", f"{v['max_abs']:.2e} ({v['max_rel']:.1e})",
                    "informational"))
    return out


def parse_junit(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError:
        return {}
    m = re.search(r'<testsuite[^>]*\btests="(\d+)"[^>]*', text)
    get = lambda k: int((re.search(rf'\b{k}="(\d+)"', m[0]) or [0, 0])[1]) if m else 0  # noqa: E731
    failed = get("failures") + get("errors")
    return {"passed": get("tests") - failed - get("skipped"), "failed": failed, "skipped": get("skipped")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/gpu-check.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, default=ROOT / ".whl", help="folder of wheels (default: .whl)")
    ap.add_argument("--target", type=Path, help="install into this folder (put on PYTHONPATH) instead of the env")
    ap.add_argument("--budget-s", type=float, default=480.0, help="time budget of all steps (default 480 = 8 min)")
    ap.add_argument("--cpu-dry-run", action="store_true", help="the same steps on CPU at tiny sizes")
    ap.add_argument("--out", type=Path, help="folder for the step outputs (default: a temporary one)")
    ap.add_argument("--only", help="comma-separated steps to run (default all): " + ",".join(SHARES))
    ap.add_argument("--install-only", action="store_true", help="stop after the install step")
    ap.add_argument("--require", action="append", default=[], metavar="MODULE=DIST",
                    help="check this module instead of the default list (repeatable)")
    ap.add_argument("--download-wheels", type=Path, metavar="DIR",
                    help="pip download what the check installs into DIR (needs network), then stop")
    ap.add_argument("--python-version", default="3.12", help="for --download-wheels (default 3.12)")
    ap.add_argument("--weights-root", help="real weights mirrored as <root>/<org>/<name>/... (step 'real weights')")
    ap.add_argument("--cache-dir", help="Hugging Face cache holding the real weights (default: $HF_HUB_CACHE)")
    ap.add_argument("--insightface-root", help="folder holding models/buffalo_l (default: ~/.insightface)")
    a = ap.parse_args(argv)
    if a.budget_s <= 0:
        ap.error("--budget-s must be > 0")
    steps = list(SHARES) if not a.only else [s.strip() for s in a.only.split(",")]
    unknown = [s for s in steps if s not in SHARES]
    if unknown:
        ap.error(f"unknown step(s) {unknown}; steps: {list(SHARES)}")
    needed = dict(r.split("=", 1) for r in a.require) if a.require else NEEDED
    pinned = pins()
    spec = lambda dist: pinned.get(dist.lower(), dist)  # noqa: E731
    if a.download_wheels:
        return download(a.download_wheels, [spec(d) for d in needed.values()], a.python_version)

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not a.cpu_dry_run:
        print(f"gpu-check: no CUDA device visible to {sys.executable} (torch {torch.__version__}, "
              f"CUDA build {torch.version.cuda}): run it on a CUDA machine, or pass --cpu-dry-run to test the "
              "script on CPU", file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name() if cuda and not a.cpu_dry_run else "CPU (dry run, tiny sizes)"
    todo = missing(needed)
    if todo:
        if not a.wheels.is_dir():
            print(f"gpu-check: missing {sorted(todo.values())} and no wheel folder {a.wheels}: make one with "
                  "scripts/gpu-wheels.sh DIR on a machine with network, then --wheels DIR", file=sys.stderr)
            return 3
        print(f"installing {sorted(todo.values())} from {a.wheels}", flush=True)
        p = install(a.wheels, [spec(d) for d in todo.values()], a.target)
        if a.target is not None:
            sys.path.insert(0, str(a.target))
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(a.target), os.environ.get("PYTHONPATH")]))
        importlib.invalidate_caches()
        still = missing(needed)
        if p.returncode != 0 or still:
            print(f"gpu-check: install from {a.wheels} failed (still missing: {sorted(still.values())}):\n"
                  f"{p.stdout}{p.stderr}", file=sys.stderr)
            return 3
    print(f"packages: all of {sorted(needed.values())} import", flush=True)
    if a.install_only:
        return 0
    out = a.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if a.cpu_dry_run:
        env["CUDA_VISIBLE_DEVICES"] = ""
    full = [] if a.cpu_dry_run else ["--full"]
    py = sys.executable
    cmds = {
        "tests/gpu": [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu", f"--junitxml={out / 'gpu.xml'}"],
        "pipeline": [py, "tests/benchmarks/bench_pipeline.py", *full, "--repeats", "1" if a.cpu_dry_run else "3",
                     "--json", str(out / "pipeline.json")],
        "capture": [py, "tests/benchmarks/bench_capture.py", *full, "--repeats", "1" if a.cpu_dry_run else "3",
                    "--specs", "summaries_only,head_mean_no_balance,head_mean,head_mean_words_all", "--store-samples", "0", "--json", str(out / "capture.json")],
        "am2 precision": [py, "tests/benchmarks/bench_am2_precision.py", *full, "--json", str(out / "am2.json")],
        "real weights": [py, "tests/benchmarks/real_weights_check.py", "--json", str(out / "real.json"),
                         "--images", str(out / "real-images"),
                         *(["--mirror", str(out / "mirror"), "--checkpoints", "hyper,turbo"] if a.cpu_dry_run else []),
                         *[x for flag, v in (("--weights-root", a.weights_root), ("--cache-dir", a.cache_dir),
                                             ("--insightface-root", a.insightface_root)) if v for x in (flag, v)]],
    }
    t0 = time.perf_counter()
    results = []
    for name in steps:
        left = a.budget_s - (time.perf_counter() - t0)
        share = SHARES[name] / sum(SHARES[s] for s in steps[steps.index(name):])
        results.append(_step(name, cmds[name], left * share, env))
    figures = {"tests": parse_junit(out / "gpu.xml"), "pipeline": _read_json(out / "pipeline.json"),
               "capture": _read_json(out / "capture.json"), "am2": _read_json(out / "am2.json"),
               "real": _read_json(out / "real.json")}
    wall = time.perf_counter() - t0
    text = table(results, figures, device, a.budget_s, wall)
    (out / "table.txt").write_text(text + "\n")
    print("\n" + text, flush=True)
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
