"""Fixtures of the workbench tests: a small store written with the store's own writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "workbench" / "app.py")


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory):
    """The fixture store (built once per session): see tests/app/fixture_store.py."""
    from tests.app.fixture_store import build

    base = tmp_path_factory.mktemp("wbstore")
    return build(base / "store", id_image_dir=base / "ids")


@pytest.fixture(scope="session")
def sweep_store(tmp_path_factory):
    """Two capture commands' runs (tests/app/fixture_store.build_sweeps); read-only for the
    tests that share it."""
    from tests.app.fixture_store import build_sweeps

    base = tmp_path_factory.mktemp("wbsweeps")
    return build_sweeps(base / "store", id_image_dir=base / "ids")


@pytest.fixture
def app(fixture_store, monkeypatch):
    """An AppTest of the entry script reading the fixture store (FASTFACE_STORE)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FASTFACE_STORE", fixture_store["path"])
    return AppTest.from_file(APP, default_timeout=60)


def store_snapshot(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file of a store (to prove it unchanged)."""
    root = Path(path)
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}
