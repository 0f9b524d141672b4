"""The import structure drawn in docs/architecture.md, checked on every import.

Every ``import`` / ``from ... import`` of ``qa`` in ``qa/`` is read from the
source (also those inside functions and under ``TYPE_CHECKING``: a deferred
import is still a dependency), so this needs no heavy library. Two rules:

- no import circle between modules;
- no import runs up the layers (a module imports its own layer or lower ones),
  and the named sideways imports stay out (the store knows no ingest, nothing
  outside the backend registry names a concrete backend).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

QA_DIR = Path(__file__).resolve().parents[1] / "qa"

#: Bottom to top; a module belongs to the first layer with a prefix matching it
#: (a prefix "qa.x" covers qa.x and qa.x.*). Keep in step with docs/architecture.md.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("qa._files", "qa.errors", "qa.config", "qa.types", "qa.batching", "qa.priority")),
    ("parts", ("qa.ingest", "qa.store", "qa.chunking", "qa.engine", "qa.embedding", "qa.formatting", "qa.fusion",
               "qa.reflow", "qa.pages",
               "qa.evaluation.squad")),
    ("reader", ("qa.reader",)),
    ("stages", ("qa.retrieval", "qa.indexing", "qa.answering", "qa.index_manager", "qa.uploads")),
    ("pipeline", ("qa.pipeline",)),
    ("evaluation and training", ("qa.evaluation.calibrate", "qa.evaluation.gold", "qa.evaluation.metrics",
                                 "qa.evaluation.report", "qa.evaluation.runs", "qa.training")),
    ("entry points", ("qa.evaluation.cli", "qa.evaluation", "qa.api", "qa.cli", "qa.evaluate", "qa.__main__",
                      "qa.ui", "qa")),
]

#: (importer prefix, imported prefix, why) that the layers alone would allow.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("qa.store", "qa.ingest", "the store keeps documents, it does not read files"),
    ("qa.ingest", "qa.store", "ingestion makes Documents; storing them is the indexer's"),
    ("qa.store", "qa.embedding", "the store holds vectors, whoever made them"),
    ("qa.reader", "qa.store", "the reader reads passages, wherever they came from"),
]
#: Concrete backend modules: only the registry (qa.store.backends) imports them.
BACKEND_MODULES = ("qa.store.backends.faiss_flat", "qa.store.backends.faiss_hnsw", "qa.store.backends.faiss_ivf",
                   "qa.store.backends.milvus", "qa.store.backends.bm25")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules(root: Path = QA_DIR) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph(root: Path = QA_DIR) -> dict[str, set[str]]:
    """module -> the qa modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    mods = modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(r for a in node.names if (r := resolve(a.name)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                if not _under(full, "qa"):
                    continue
                for a in node.names:
                    sub = f"{full}.{a.name}"
                    r = sub if sub in mods else resolve(full)
                    if r:
                        deps.add(r)
        deps.discard(mod)
        graph[mod] = deps
    return graph


def layer_of(mod: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(_under(mod, p) for p in prefixes):
            return i
    raise AssertionError(f"{mod} is in no layer: add it to LAYERS and docs/architecture.md")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if _under(mod, dep):  # a module's own package (executed anyway by Python)
                continue
            if layer_of(dep) > layer_of(mod):
                bad.append(f"{mod} ({LAYERS[layer_of(mod)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})")
            for src, dst, why in FORBIDDEN:
                if _under(mod, src) and _under(dep, dst):
                    bad.append(f"{mod} imports {dep}: {why}")
            if dep in BACKEND_MODULES and mod != "qa.store.backends" and not _under(mod, dep):
                bad.append(f"{mod} imports the concrete backend {dep}: use the registry in qa.store.backends")
    return bad


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_is_read(graph):
    # The checks below mean something only if the parser finds the imports.
    assert "qa.store.base" in graph["qa.store.backends.faiss_flat"]
    assert "qa.ingest.metadata" in graph["qa.ingest.text"]
    assert "qa.evaluation.calibrate" in graph["qa.api"]


def test_no_import_circles(graph):
    assert cycles(graph) == []


def test_no_import_runs_up_a_layer_or_sideways(graph):
    assert violations(graph) == []


def test_the_checks_catch_a_circle_and_an_upward_import():
    g = {"qa.ingest.loading": {"qa.ingest.registry"}, "qa.ingest.registry": {"qa.ingest.text"},
         "qa.ingest.text": {"qa.ingest.loading"}, "qa.pipeline": {"qa.evaluation.calibrate"},
         "qa.store.snapshot": {"qa.ingest"}, "qa.store.files": {"qa.store.backends.milvus"}}
    assert cycles(g) == [["qa.ingest.loading", "qa.ingest.registry", "qa.ingest.text"]]
    found = violations(g)
    assert any("qa.pipeline" in v and "qa.evaluation.calibrate" in v for v in found)
    assert any("qa.store.snapshot imports qa.ingest" in v for v in found)
    assert any("concrete backend qa.store.backends.milvus" in v for v in found)


def test_every_layer_is_drawn_in_the_architecture_doc():
    doc = (QA_DIR.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name, prefixes in LAYERS:
        assert name in doc
        for p in prefixes:
            assert f"`{p}`" in doc, f"{p} is not in docs/architecture.md"
