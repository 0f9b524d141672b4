"""Issue 18: nothing a caller passes can lose the index, and no request can ask for unbounded work.

Documents are checked once, where they are made (``Document.__post_init__``); a
document that is accepted must come back from the store unchanged. Limits
(``qa.config.LimitsConfig``) refuse over-large requests before any work.
"""

from __future__ import annotations

import pytest

from conftest import SEED_FILE, make_fake_qa
from qa.config import LimitsConfig, Settings
from qa.errors import ArgumentError, DocumentError, DocumentFieldError, LimitError, QAError
from qa.store import IndexStore
from qa.types import Document, Locator

Q = "Which army did Popov command?"


def fake_qa(index_dir, **kw):
    return make_fake_qa(index_dir=index_dir, corpus_dir=None, **kw)


BAD_DOCUMENTS = [
    ("id", dict(id=None, text="Some text.")),
    ("id", dict(id=5, text="Some text.")),
    ("id", dict(id=b"x.txt", text="Some text.")),
    ("id", dict(id="", text="Some text.")),
    ("id", dict(id="   ", text="Some text.")),
    ("id", dict(id="../../x.txt", text="Some text.")),
    ("id", dict(id="a/../b.txt", text="Some text.")),
    ("id", dict(id="/etc/passwd", text="Some text.")),
    ("id", dict(id="a//b.txt", text="Some text.")),
    ("id", dict(id="a\\b.txt", text="Some text.")),
    ("id", dict(id="a\x00b", text="Some text.")),
    ("id", dict(id="two\nlines", text="Some text.")),
    ("id", dict(id="bidi\u202eevil.txt", text="Some text.")),
    ("id", dict(id="\ud800", text="Some text.")),
    ("id", dict(id="x" * 5000, text="Some text.")),
    ("text", dict(id="a.txt", text="")),
    ("text", dict(id="a.txt", text=" \n\t")),
    ("text", dict(id="a.txt", text=None)),
    ("text", dict(id="a.txt", text=b"bytes")),
    ("text", dict(id="a.txt", text="bad \udcff text")),
    ("title", dict(id="a.txt", text="Some text.", title=None)),
    ("title", dict(id="a.txt", text="Some text.", title="\ud800")),
    ("meta", dict(id="a.txt", text="Some text.", meta=None)),
    ("meta", dict(id="a.txt", text="Some text.", meta={"x": object()})),
    ("meta", dict(id="a.txt", text="Some text.", meta={"x": float("nan")})),
    ("meta", dict(id="a.txt", text="Some text.", meta={1: "int key"})),
    ("meta", dict(id="a.txt", text="Some text.", meta={"t": (1, 2)})),
    ("meta", dict(id="a.txt", text="Some text.", meta={"s": "\udcff"})),
    ("locators", dict(id="a.txt", text="Some text.", locators=(Locator(0, 99),))),
    ("locators", dict(id="a.txt", text="Some text.", locators=(Locator(-1, 3),))),
    ("locators", dict(id="a.txt", text="Some text.", locators=(Locator(0, 3, page=0),))),
    ("locators", dict(id="a.txt", text="Some text.", locators=((0, 3),))),
    ("locators", dict(id="a.txt", text="Some text.", locators="abc")),
]


@pytest.mark.parametrize("field,kwargs", BAD_DOCUMENTS)
def test_a_document_the_store_cannot_round_trip_is_refused_naming_the_field(field, kwargs):
    with pytest.raises(DocumentFieldError) as e:
        Document(**kwargs)
    assert e.value.field == field and f"Document.{field}" in str(e.value)
    assert isinstance(e.value, QAError) and isinstance(e.value, ValueError)


def test_odd_but_valid_documents_round_trip_the_store(tmp_path):
    docs = [
        Document("notes/2024/a b.txt", "Nested ids keep their folders.", "A b"),
        Document("émoji 👩‍💻.md", "Unicode ids and a zero-width joiner.", "É"),
        Document("nul.txt", "A NUL \x00 inside the text is kept.", meta={"k": [1, "2", {"x": None}], "n": 1.5}),
        Document("loc.pdf", "Page one.\fPage two.", "L", locators=[Locator(0, 9, page=1), Locator(10, 19, page=2)]),
    ]
    idx = tmp_path / "index"
    fake_qa(idx).add_documents(docs)
    back = IndexStore.load(idx).documents
    for d in docs:
        assert back[d.id] == d


def test_a_bad_document_leaves_the_index_as_it_was(tmp_path):
    """The issue's case: a Document with id None made the index unloadable; now it is
    refused where it is made, and the index keeps answering."""
    idx = tmp_path / "index"
    qa = fake_qa(idx)
    qa.add_paths([SEED_FILE])
    before = set(IndexStore.load(idx).documents)
    with pytest.raises(DocumentFieldError):
        qa.add_documents([Document(id=None, title="t", text="Some text.")])
    with pytest.raises(ArgumentError):
        qa.add_documents([{"id": "dict.txt", "text": "Not a Document."}])
    assert set(IndexStore.load(idx).documents) == before
    assert fake_qa(idx).ask(Q).citations


def test_a_file_whose_name_cannot_be_an_id_is_a_per_file_problem(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "two\nlines.txt").write_text("Text of an oddly named file.\n", encoding="utf-8")
    (folder / "fine.txt").write_text("Text of a plainly named file.\n", encoding="utf-8")
    qa = fake_qa(tmp_path / "index")
    report = qa.sync_paths([folder])
    assert report.added == ["fine.txt"]
    assert len(report.problems) == 1 and "rename the file" in report.problems[0].reason
    assert "\n" not in report.problems[0].reason
    with pytest.raises(DocumentError, match="rename the file"):
        qa.add_paths([folder / "two\nlines.txt"])


@pytest.mark.parametrize("paths", ["", " ", [""], ["", str(SEED_FILE)]])
def test_an_empty_path_is_refused_not_the_working_directory(tmp_path, monkeypatch, paths):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stray.txt").write_text("A file in the working directory.\n", encoding="utf-8")
    qa = fake_qa(tmp_path / "index")
    with pytest.raises(ArgumentError, match="empty path"):
        qa.add_paths(paths)
    with pytest.raises(ArgumentError, match="empty path"):
        qa.sync_paths(paths)
    assert not (tmp_path / "index" / "CURRENT").exists()


# --- limits --------------------------------------------------------------------------------

@pytest.fixture
def seeded(tmp_path):
    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    return idx


def test_top_k_over_the_limit_is_refused_before_any_work(seeded):
    qa = fake_qa(seeded)
    calls = []
    qa.retriever.run = lambda *a, **k: calls.append(1)  # would be the first real work
    for k in (51, 10**9):
        with pytest.raises(LimitError, match="limits.max_top_k"):
            qa.ask(Q, top_k=k)
    assert calls == []
    assert isinstance(LimitError("x"), ArgumentError)
    assert len(fake_qa(seeded).ask(Q, top_k=50).citations) >= 1


def test_limits_come_from_the_settings(seeded):
    from dataclasses import replace

    s = replace(Settings(), limits=LimitsConfig(max_top_k=3, max_history_turns=2, max_history_chars=100))
    qa = make_fake_qa(index_dir=seeded, corpus_dir=None, settings=s)
    with pytest.raises(LimitError):
        qa.ask(Q, top_k=4)
    assert qa.ask(Q, top_k=3).citations
    with pytest.raises(LimitError, match="3 turns; the limit is 2"):
        qa.ask(Q, history=[("Who?", "him")] * 3)
    with pytest.raises(LimitError, match="characters; the limit is 100"):
        qa.ask(Q, history=[("Who is it?", "x" * 200)])
    assert qa.ask(Q, history=[("Who?", "him")] * 2).citations
    with pytest.raises(ValueError):
        LimitsConfig(max_top_k=0)


def test_default_history_limits(seeded):
    qa = fake_qa(seeded)
    with pytest.raises(LimitError, match="max_history_turns"):
        qa.ask(Q, history=[("Who?", "him")] * 51)
    with pytest.raises(LimitError, match="max_history_chars"):
        qa.ask(Q, history=[("Who?", "x" * 20_001)])
    with pytest.raises(ArgumentError, match="not valid text"):
        qa.ask(Q, history=[("Who?", "\ud800")])


def test_retrieval_alone_is_bounded_by_the_index(seeded):
    qa = fake_qa(seeded)
    n = len(qa.store)
    assert len(qa.retrieve([Q], top_k=10**9)[0]) == n
