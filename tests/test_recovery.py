"""Issue 18: an index can always be rebuilt from itself, and one damaged record
costs only its own document (fake models; the store is real)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import TINY_DOCS, make_doc, make_fake_qa
from qa import errors
from qa.cli import main as cli_main
from qa.store import POINTER, IndexStore


def fake_qa(index_dir, **kw):
    return make_fake_qa(index_dir=index_dir, corpus_dir=None, **kw)


@pytest.fixture
def built(tmp_path) -> Path:
    idx = tmp_path / "index"
    fake_qa(idx).add_documents([make_doc(k, v) for k, v in TINY_DOCS.items()])
    return idx


def snap(idx: Path) -> Path:
    return idx / (idx / POINTER).read_text().strip()


def damage_record(idx: Path, doc_id: str, how: str) -> None:
    path = snap(idx) / "documents.jsonl"
    lines = path.read_bytes().split(b"\n")
    i = next(n for n, line in enumerate(lines) if line.startswith(json.dumps({"id": doc_id}).encode()[:-1]))
    if how == "flip a byte of the text":
        j = lines[i].index(b'"text": "') + 12
        lines[i] = lines[i][:j] + bytes([lines[i][j] ^ 0x20]) + lines[i][j + 1:]
    elif how == "cut the record short":
        lines[i] = lines[i][: len(lines[i]) // 2]
    elif how == "join it to the next":
        lines[i] = lines[i] + lines.pop(i + 1) if i + 1 < len(lines) - 1 else lines[i][:-1]
    elif how == "delete the record":
        lines.pop(i)
    elif how == "invalid UTF-8":
        lines[i] = lines[i].replace(b"Harbour", b"Harb\xff\xfeur", 1)
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("how", ["flip a byte of the text", "cut the record short", "delete the record",
                                 "invalid UTF-8"])
def test_one_damaged_record_costs_only_its_document(built, how, caplog):
    damage_record(built, "beta.md", how)
    with caplog.at_level(logging.WARNING, logger="qa"):
        store = IndexStore.load(built)
    assert set(store.documents) == {"alpha.txt", "gamma.txt"}
    assert len(store.damaged) == 1 and "beta.md" in store.damaged[0], store.damaged
    assert any("damaged document record" in r.getMessage() and "beta.md" in r.getMessage() for r in caplog.records)
    # no chunk, vector or BM25 entry of beta is reachable; the rest answers as before
    assert {c.doc_id for c in store.chunks} == {"alpha.txt", "gamma.txt"}
    assert len(store.vectors) == len(store.lexical) == len(store)
    qa = fake_qa(built)
    a = qa.ask("Who is the harbour master of Beta Harbour?", top_k=50)
    assert a.citations and all(c.doc_id != "beta.md" for c in a.citations)
    assert qa.ask("When did the mill wheel break?").citations[0].doc_id == "gamma.txt"


def test_a_record_merged_with_its_neighbour_does_not_shift_the_others(built):
    damage_record(built, "alpha.txt", "join it to the next")
    store = IndexStore.load(built)
    assert "gamma.txt" in store.documents
    for c in store.chunks:  # every chunk still lies in its own document's text
        assert store.documents[c.doc_id].text[c.start:c.end] == c.text


def test_the_next_write_publishes_a_clean_index_without_the_damaged_document(built):
    damage_record(built, "beta.md", "flip a byte of the text")
    qa = fake_qa(built)
    qa.add_documents([make_doc("delta.txt", "Delta Farm keeps goats and bees on the western slope.")])
    store = IndexStore.load(built)
    assert store.damaged == []
    assert set(store.documents) == {"alpha.txt", "gamma.txt", "delta.txt"}
    assert len(store.vectors) == len(store.lexical) == len(store) == len(store.chunk_ids)


def test_rebuild_from_stored_texts_when_the_originals_are_gone(tmp_path, capsys):
    """Uploaded documents have no files left: `qa index --rebuild` (no paths) rebuilds
    vectors, BM25 and chunks from the texts the index stores."""
    idx = tmp_path / "index"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in TINY_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    fake_qa(idx).add_paths([docs])
    for f in docs.iterdir():
        f.unlink()
    before = IndexStore.load(idx)
    # the vector file is damaged: the index is refused, and the message says how to recover
    vec = snap(idx) / "vectors" / "vectors.faiss"
    vec.write_bytes(vec.read_bytes()[:100])
    with pytest.raises(errors.IndexCorruptError, match=r"qa index --rebuild --index"):
        IndexStore.load(idx)
    rc = cli_main(["index", "--rebuild", "--index", str(idx)], qa_factory=make_fake_qa)
    out, err = capsys.readouterr()
    assert rc == 0, err
    after = IndexStore.load(idx)
    assert {d: x.text for d, x in after.documents.items()} == {d: x.text for d, x in before.documents.items()}
    assert [c.text for c in after.chunks] == [c.text for c in before.chunks]
    assert "3 documents" in out


def test_rebuild_with_a_damaged_pointer_uses_the_newest_snapshot(built, capsys):
    (built / POINTER).write_bytes(b"\x00garbage")
    assert cli_main(["index", "--rebuild", "--index", str(built)], qa_factory=make_fake_qa) == 0
    assert set(IndexStore.load(built).documents) == set(TINY_DOCS)


def test_rebuild_of_nothing_says_what_to_do(tmp_path, capsys):
    rc = cli_main(["index", "--rebuild", "--index", str(tmp_path / "none")], qa_factory=make_fake_qa)
    assert rc == 1 and "qa index PATH... --index" in capsys.readouterr().err


def test_index_without_paths_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["index", "--index", str(tmp_path / "x")], qa_factory=make_fake_qa)
    assert e.value.code == 2 and "--rebuild alone" in capsys.readouterr().err
