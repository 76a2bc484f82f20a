"""The shape of the code (README.md, "The code, one room per concern"): no import circles over
fastface, probes, store and workbench; fastface's rooms point one way; every repository path the
Markdown files name exists; the notebook example of ``fastface.__doc__`` runs on the tiny world."""
from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fastface", "probes", "store", "workbench")
#: fastface's rooms, lowest first: a module imports only from its own room or a lower one
ROOMS = ("method", "faces", "models", "sweeps", "evaluation", "studio", "cli")


def _modules() -> dict[str, Path]:
    """Every module of the packages (workbench/views and workbench/app.py included) by dotted name."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules of PACKAGES that ``name`` imports, at module level or inside a function alike
    (``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_imports():
    # a few known edges, so that an empty graph cannot pass the tests below
    assert "fastface.method.config" in GRAPH["fastface.models.pipeline"]
    assert "store.schema" in GRAPH["store.catalog"]  # relative import
    assert "fastface.faces.photos" in GRAPH["fastface.models.pipeline"]  # function-level import
    assert "fastface.cli.evaluate" in GRAPH["fastface.cli"]  # `from fastface.cli import evaluate`
    assert len(MODULES) > 100


def test_no_import_circles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "fastface":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else "api"


def test_rooms_point_one_way():
    rank = {r: i for i, r in enumerate(ROOMS)} | {"api": len(ROOMS)}
    upward = []
    for module, targets in GRAPH.items():
        room = _room(module)
        for t in targets:
            troom = _room(t)
            if troom is None:
                continue
            if room is None:
                if troom in ("cli", "api") or (module.startswith("store") and troom != "method"):
                    upward.append(f"{module} -> {t}")
            elif rank[troom] > rank[room]:
                upward.append(f"{module} -> {t}")
    assert upward == []


def test_nothing_below_the_cli_imports_it():
    users = sorted(m for m, targets in GRAPH.items() for t in targets
                   if t.startswith("fastface.cli") and not m.startswith("fastface.cli"))
    assert users == []


def test_the_method_loads_no_model():
    heavy = ("huggingface_hub", "safetensors", "transformers", "fastface.models", "fastface.faces",
             "fastface.sweeps", "store", "probes")
    for name, path in MODULES.items():
        if not name.startswith("fastface.method"):
            continue
        text = path.read_text()
        for mod in heavy:
            assert not re.search(rf"^\s*(from|import) {re.escape(mod)}\b", text, re.M), (name, mod)


# --- Markdown paths ------------------------------------------------------------------------------
MARKDOWN = sorted(p for p in ROOT.rglob("*.md") if ".git" not in p.parts and "node_modules" not in p.parts
                  and not any(part.startswith(".") for part in p.relative_to(ROOT).parts[:-1]))
PATH_RE = re.compile(r"(?<![\w./-])((?:\.?[\w-]+/)+[\w.-]*\w\.(?:py|md|sql|json|sh|toml|txt|safetensors|png))\b")
DOTTED_RE = re.compile(r"`((?:fastface|probes|store|workbench)(?:\.\w+)+)")


def _markdown_paths() -> list[tuple[Path, str]]:
    out = []
    for md in MARKDOWN:
        for m in PATH_RE.finditer(md.read_text()):
            out.append((md, m.group(1)))
    return out


def test_markdown_paths_exist():
    """Every `folder/file.ext` a Markdown file names exists: from the repository root, or from the
    Markdown file's folder when the path starts with one of that folder's entries (e.g.
    `sql/views/maps.sql` in store/README.md).  Paths in other repositories (the paper's release,
    insightface) start with no folder of ours and are not checked."""
    top = {p.name for p in ROOT.iterdir()}
    missing, checked = [], 0
    for md, rel in _markdown_paths():
        if "NNNN" in rel:  # a pattern (sql/migrations/NNNN_name.sql), not a file
            continue
        first = rel.split("/")[0]
        local = {p.name for p in md.parent.iterdir()}
        if first in local and (md.parent / rel).exists():
            checked += 1
            continue
        if first in top or first in local:
            checked += 1
            if not (ROOT / rel).exists() and not (md.parent / rel).exists():
                missing.append(f"{md.relative_to(ROOT)}: {rel}")
    assert checked > 50
    assert missing == []


def test_markdown_module_names_exist():
    """Every `fastface.x.y` (probes, store, workbench) a Markdown file names is a module, or an
    attribute of one (one level: `store.compact.compact`)."""
    missing = []
    for md in MARKDOWN:
        for m in DOTTED_RE.finditer(md.read_text()):
            parts = m.group(1).split(".")
            k = max(i for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
            if len(parts) - k > 1:
                missing.append(f"{md.relative_to(ROOT)}: {m.group(1)}")
    assert missing == []


def test_markdown_path_check_catches_a_moved_file(tmp_path):
    assert PATH_RE.findall("see `fastface/method/config.py` and fastface/nowhere.py.") == [
        "fastface/method/config.py", "fastface/nowhere.py"]
    assert not (ROOT / "fastface/nowhere.py").exists()


# --- the public API ------------------------------------------------------------------------------
def test_public_api_names():
    import fastface

    for name in fastface.__all__:
        assert getattr(fastface, name) is not None
    from fastface.method.config import FastFaceConfig
    from fastface.models.pipeline import load_pipeline
    from probes.capture import capture
    from store.queries import read_tables

    assert (fastface.FastFaceConfig, fastface.load_pipeline, fastface.capture, fastface.read_store) == (
        FastFaceConfig, load_pipeline, capture, read_tables)
    with pytest.raises(AttributeError):
        fastface.no_such_name  # noqa: B018


def _notebook_example() -> str:
    import fastface

    doc = fastface.__doc__
    block = doc.split("::\n", 1)[1].lstrip("\n").split("\n\n", 1)[0]
    return textwrap.dedent(block)


def test_the_docstring_example_runs_on_the_tiny_world():
    code = _notebook_example()
    assert len(code.strip().splitlines()) == 5
    scope: dict = {}
    exec(compile(code, "fastface.__doc__", "exec"), scope)  # noqa: S102
    result, maps = scope["result"], scope["maps"]
    assert result.image.size[0] > 0 and result.image.size[1] > 0
    assert maps and {type(m).__name__ for m in maps} == {"MapRecord"}


def test_read_store_gives_dataframes(tmp_path):
    import fastface
    from tests.app.fixture_store import build

    build(tmp_path / "store")
    tables = fastface.read_store(tmp_path / "store")
    assert sorted(tables) == ["faces", "metrics", "runs", "samples"]
    assert len(tables["runs"]) > 0 and len(tables["samples"]) > 0
    assert list(fastface.read_store(tmp_path / "store", ["sites"])) == ["sites"]
    from store.layout import StoreError

    with pytest.raises(StoreError, match="no view"):
        fastface.read_store(tmp_path / "store", ["runs; drop table x"])
