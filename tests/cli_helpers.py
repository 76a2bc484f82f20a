"""Helpers of the CLI tests: a store's files before and after a refused command, and the
one-line error every bad input must give."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(path: Path) -> dict:
    """Every file under path (or path itself) with its size and content hash."""
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(path.rglob("*"))}


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    """Exit status 2 and exactly one line 'fastface capture: error: ...' holding every needle."""
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("fastface capture: error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
