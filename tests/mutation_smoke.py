"""Mutation smoke check (a script, not collected by pytest, not run in CI).

Plants a handful of faults, one at a time, in a copy of the repository (a temp dir: the
working tree is never touched), runs a fast subset of the tests on each copy, and prints a
table: fault, tests run, failed, caught. Every fault must make at least one test fail; the
clean copy must pass. Exit status 0 when the clean copy passes and every fault is caught.

    python tests/mutation_smoke.py [--only NAME ...] [--keep]

Each fault is an exact text replacement that must match exactly once (the script stops if the
code it mutates has moved, rather than reporting a fault as "caught" that was never planted).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the fast subset (about 2-3 minutes on two shared cores)
SUBSET = [
    "tests/unit/test_schedules_method.py",
    "tests/unit/test_transforms_math.py",
    "tests/unit/test_face_world_refine.py",
    "tests/integration/test_probe_reference.py",
    "tests/integration/test_schedules_applied.py",
    "tests/integration/test_pipeline.py::test_every_preset_runs_deterministically_and_differs[hyper]",
]


@dataclass(frozen=True)
class Fault:
    name: str
    path: str
    old: str
    new: str


FAULTS = [
    Fault("map flip (queries reversed: overlays rotated 180 deg)", "probes/reduce.py",
          "return x.permute(0, 1, 3, 2).reshape(b * hh * t, h, w)",
          "return x.flip(2).permute(0, 1, 3, 2).reshape(b * hh * t, h, w)"),
    Fault("map transpose (h and w swapped)", "probes/reduce.py",
          "return x.permute(0, 1, 3, 2).reshape(b * hh * t, h, w)",
          "return x.permute(0, 1, 3, 2).reshape(b * hh * t, w, h).transpose(-1, -2)"),
    Fault("schedule reversal (schedule[n-1-step])", "fastface/method/config.py",
          "    return schedule[step]\n",
          "    return schedule[num_steps - 1 - step]\n"),
    Fault("AM off (never active)", "fastface/method/processor.py",
          "return self.context.am.applies(self.part, self.context.step)",
          "return False"),
    Fault("AM off after collecting_maps (issue 28: contexts re-pointed)", "fastface/method/processor.py",
          "        if isinstance(proc, IPAdapterAttnProcessor2_0):  # FastFace processors included\n",
          "        if isinstance(proc, FastFaceAttnProcessor):\n"
          "            proc.context = context\n"
          "            new[name] = proc\n"
          "        elif isinstance(proc, IPAdapterAttnProcessor2_0):\n"),
    Fault("wrong branch row (uncond <-> text_id)", "probes/reduce.py",
          "starts = [layout.rows_of(n).start for n in present]",
          "starts = [layout.batch_size - 1 - layout.rows_of(n).start for n in present]"),
    Fault("softmax temperature (1/d instead of 1/sqrt(d))", "fastface/method/processor.py",
          "scale = 1.0 / math.sqrt(query.shape[-1])",
          "scale = 1.0 / query.shape[-1]"),
    Fault("AM1 scale per part swapped (down <-> up)", "fastface/method/config.py",
          'return {"down": self.scale_down, "mid": self.scale_mid, "up": self.scale_up}[part]',
          'return {"down": self.scale_up, "mid": self.scale_mid, "up": self.scale_down}[part]'),
]


def copy_repo(dest: Path) -> None:
    """The working tree's files that git tracks or would track (ignored build outputs left out)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def plant(repo: Path, fault: Fault) -> None:
    path = repo / fault.path
    text = path.read_text()
    n = text.count(fault.old)
    if n != 1:
        raise SystemExit(f"fault {fault.name!r}: the text to replace occurs {n} times in {fault.path} "
                         "(the code moved: update the fault)")
    path.write_text(text.replace(fault.old, fault.new))


def run_subset(repo: Path, subset: list[str]) -> tuple[int, int, str]:
    """(tests run, failed, last lines) of pytest on the subset in ``repo``."""
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:warnings",
                           "--timeout=900", *subset], cwd=repo, env=env, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors)", tail)}
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    return counts.get("passed", 0) + failed, failed, tail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="run only faults whose name contains one of these words")
    ap.add_argument("--keep", action="store_true", help="keep the temp copies (printed)")
    args = ap.parse_args(argv)
    faults = [f for f in FAULTS if not args.only or any(w in f.name for w in args.only)]
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="ff-mutation-") as tmp:
        for fault in [None, *faults]:
            repo = Path(tmp) / ("clean" if fault is None else f"fault{len(rows)}")
            copy_repo(repo)
            if fault is not None:
                plant(repo, fault)
            t0 = time.time()
            run, failed, tail = run_subset(repo, SUBSET)
            name = "(none: the clean copy)" if fault is None else fault.name
            caught = failed > 0 if fault is not None else failed == 0
            ok &= caught and run > 0
            rows.append((name, run, failed, ("yes" if caught else "NO") if fault is not None
                         else ("passes" if caught else "FAILS"), time.time() - t0))
            print(f"  {name}: {run} run, {failed} failed ({time.time() - t0:.0f} s) -- {tail}", flush=True)
            if not args.keep:
                shutil.rmtree(repo, ignore_errors=True)
            else:
                print(f"    kept: {repo}")
        if args.keep:
            input("copies kept until Enter ...")
    print()
    print("| fault | tests run | failed | caught |")
    print("|---|---|---|---|")
    for name, run, failed, caught, _ in rows:
        print(f"| {name} | {run} | {failed} | {caught} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
