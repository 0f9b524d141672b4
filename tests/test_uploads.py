"""qa.uploads with the fake models (fast): the limits an upload is held to."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import make_fake_qa
from qa.config import LimitsConfig, Settings
from qa.errors import UploadRefused
from qa.uploads import index_uploads


def test_an_upload_is_held_to_the_instances_configured_limits(tmp_path):
    """limits.max_files_per_upload and limits.max_upload_bytes set in the QA's Settings were
    ignored: uploads (and the upload panel's label) used the defaults (100 files, 50 MB),
    though every other limit of LimitsConfig is the instance's own."""
    import gradio as gr

    from qa.ui.documents import build_upload_panel

    settings = replace(Settings(), limits=LimitsConfig(max_files_per_upload=2, max_upload_bytes=3 * 1024**2))
    qa = make_fake_qa(index_dir=tmp_path / "index", corpus_dir=None, settings=settings)
    files = []
    for n in range(3):
        f = tmp_path / "up" / f"n{n}.txt"
        f.parent.mkdir(exist_ok=True)
        f.write_text(f"Note {n} says the harbour opens at {n} o'clock.\n", encoding="utf-8")
        files.append(f)
    with pytest.raises(UploadRefused, match="3 files in one upload; the limit is 2"):
        index_uploads(qa, files)
    assert sorted(index_uploads(qa, files[:2]).added) == ["n0.txt", "n1.txt"]
    with gr.Blocks():
        uploads, *_ = build_upload_panel(qa)
    assert "up to 2 files" in uploads.label and "3 MB in all" in uploads.label
