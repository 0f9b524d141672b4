"""A plain (non-editable) ``pip install .`` must answer: the shipped reader is
package data, and nothing may depend on the checkout's layout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, SEED_FILE

READER_FILES = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "calibration.json")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(REPO)], check=True, capture_output=True, timeout=300)
    [whl] = out.glob("qa-*.whl")
    return whl


def test_wheel_carries_the_reader_and_every_subpackage(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in READER_FILES:
        assert f"qa/models/reader/{f}" in names, f
    for module in ("qa/ingest/__init__.py", "qa/store/base.py", "qa/store/backends/faiss_flat.py",
                   "qa/reader/model.py", "qa/evaluation/cli.py", "qa/training/train_reader.py"):
        assert module in names, module


@pytest.mark.slow
def test_installed_package_answers_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    (work / "docs").mkdir(parents=True)
    (work / "docs" / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())
    script = (
        "import qa, sys\n"
        "assert qa.__file__.startswith(sys.argv[1]), qa.__file__\n"
        "from qa import QA\n"
        "q = QA(index_dir='idx', corpus_dir='docs')\n"
        "a = q.ask('Which army did General Popov command?', min_score=0.0)\n"
        "print(a.answer)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c", script, str(target)], cwd=work, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "58th" in r.stdout
