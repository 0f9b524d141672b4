"""The benchmark scripts the README and docs point at must at least start: two of
them (bench/latency.py, bench/reader_speed.py) imported names that had moved
(qa.config.ROOT, train_reader.DEFAULT_DATA) and failed before printing anything,
unnoticed because no test imported them. Each is imported here (their work sits
behind ``if __name__ == "__main__"``), so a renamed import fails the suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_bench_scripts():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_bench_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # some import their neighbours
    source = script.read_text()
    assert 'if __name__ == "__main__":' in source, f"{script.name} runs on import"
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
