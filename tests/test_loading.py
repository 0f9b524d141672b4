"""Loading: metadata, byte-exact text, and one specific error per bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa import errors
from qa.ingest import document_from_text, iter_paths, load_file, load_paths, parse_metadata

from conftest import SEED_FILE, SEED_TITLE, SEEDS


def test_seed_metadata():
    doc = load_file(SEED_FILE)
    assert doc.id == SEED_FILE.name
    assert doc.title == SEED_TITLE
    assert doc.meta["date"] == "2023-07-13"
    assert doc.meta["subtitle"] == "Turmoil in Russian Military Leadership Surfaces Amidst Open Dispute"
    assert doc.meta["source"] == str(SEED_FILE.resolve())


def test_text_is_byte_exact():
    doc = load_file(SEED_FILE)
    assert doc.text.encode("utf-8") == SEED_FILE.read_bytes()
    assert doc.text.startswith(" date 2023-07-13")  # the leading space is kept


def test_crlf_bom_and_unicode_are_kept(tmp_path):
    raw = "\ufeff date 2024-01-02 Title: Zürich Notes\r\n\r\nSubtitle: Café\r\n\r\nNaïve text – “quoted”.\r\n".encode()
    f = tmp_path / "notes.txt"
    f.write_bytes(raw)
    doc = load_file(f)
    assert doc.text.encode("utf-8") == raw
    assert doc.title == "Zürich Notes"
    assert doc.meta["date"] == "2024-01-02"
    assert doc.meta["subtitle"] == "Café"


def test_markdown_title_and_fallback(tmp_path):
    (tmp_path / "guide.md").write_text("Intro line\n# The Guide\n\nBody.\n", encoding="utf-8")
    (tmp_path / "plain_notes.txt").write_text("Just text.\n", encoding="utf-8")
    assert load_file(tmp_path / "guide.md").title == "The Guide"
    assert load_file(tmp_path / "plain_notes.txt").title == "plain notes"
    assert parse_metadata("no header", "fallback") == ("fallback", {})


def test_document_from_text():
    d = document_from_text("up.txt", " date 2023-07-13 Title: T\n\nSubtitle: S\n\nBody.", kind="upload")
    assert (d.id, d.title, d.meta) == ("up.txt", "T", {"date": "2023-07-13", "subtitle": "S", "kind": "upload"})
    assert document_from_text("x", "Body.", title="Given").title == "Given"


def test_missing_file(tmp_path):
    with pytest.raises(errors.DocumentNotFoundError, match="no such file") as e:
        load_file(tmp_path / "nope.txt")
    assert "nope.txt" in str(e.value)
    # A missing file with an unsupported suffix is reported as missing, not as the wrong type.
    with pytest.raises(errors.DocumentNotFoundError):
        load_file(tmp_path / "nope.pdf")


def test_directory(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.txt").mkdir()
    for p in (tmp_path / "folder", tmp_path / "folder.txt"):
        with pytest.raises(errors.DocumentNotFoundError, match="folder, not a file"):
            load_file(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file_chmod(tmp_path):
    f = tmp_path / "secret.txt"
    f.write_text("hidden", encoding="utf-8")
    f.chmod(0)
    try:
        with pytest.raises(errors.DocumentUnreadableError, match="cannot be read"):
            load_file(f)
    finally:
        f.chmod(0o644)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    f = tmp_path / "secret.txt"
    f.write_text("hidden", encoding="utf-8")
    real = Path.read_bytes

    def deny(self):
        if self == f:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(errors.DocumentUnreadableError, match=r"secret\.txt: cannot be read \(Permission denied\)"):
        load_file(f)


def test_non_utf8(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("caf\u00e9 cr\u00e8me".encode("latin-1"))
    with pytest.raises(errors.DocumentEncodingError, match=r"not valid UTF-8 \(byte 3\).*save it as UTF-8"):
        load_file(f)


@pytest.mark.parametrize("content", [b"", b"   \n\r\n\t "])
def test_empty_file(tmp_path, content):
    f = tmp_path / "empty.txt"
    f.write_bytes(content)
    with pytest.raises(errors.EmptyDocumentError, match="empty"):
        load_file(f)


@pytest.mark.parametrize("name", ["report.odt", "README", "notes.doc"])  # .pdf/.docx are supported now
def test_unsupported_suffix(tmp_path, name):
    f = tmp_path / name
    f.write_bytes(b"%PDF-1.4 whatever")
    with pytest.raises(errors.UnsupportedFormatError, match=r"unsupported file type.*supported: \.txt, \.md"):
        load_file(f)


def test_too_large(tmp_path):
    f = tmp_path / "big.txt"
    f.write_text("x" * 100, encoding="utf-8")
    with pytest.raises(errors.DocumentUnreadableError, match="over the 50-byte limit"):
        load_file(f, max_bytes=50)
    assert load_file(f, max_bytes=100).text == "x" * 100


def test_all_document_errors_are_qa_errors():
    for cls in (errors.DocumentNotFoundError, errors.DocumentUnreadableError, errors.DocumentEncodingError,
                errors.EmptyDocumentError, errors.UnsupportedFormatError):
        assert issubclass(cls, errors.DocumentError) and issubclass(cls, errors.QAError)


def test_empty_corpus_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.EmptyCorpusError, match=r"no \.txt or \.md files found in .*empty"):
        load_paths([tmp_path / "empty"])
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "a.rtf").write_bytes(b"{\\rtf1")  # an unsupported type
    with pytest.raises(errors.EmptyCorpusError, match="pdfs"):
        load_paths(iter([tmp_path / "pdfs"]))  # a one-shot iterable still names the folder


def test_folder_ids_are_relative_and_hidden_files_skipped(write_docs):
    d = write_docs({"a.txt": "A.", "sub/b.md": "B.", ".hidden/c.txt": "C.", ".d.txt": "D.", "e.rtf": "E"})
    assert [doc_id for _, doc_id in iter_paths([d])] == ["a.txt", "sub/b.md"]
    docs = load_paths([d])
    assert [(x.id, x.text) for x in docs] == [("a.txt", "A."), ("sub/b.md", "B.")]


def test_one_bad_file_fails_the_whole_load(write_docs):
    d = write_docs({"good.txt": "Fine.", "bad.txt": b"\xff\xfe\x00"})
    with pytest.raises(errors.DocumentEncodingError, match="bad.txt"):
        load_paths([d])


def test_same_id_from_two_files_is_refused(tmp_path, write_docs):
    a = write_docs({"notes.txt": "One."}, folder="a")
    b = write_docs({"notes.txt": "Two."}, folder="b")
    with pytest.raises(errors.DocumentError, match="both be indexed as 'notes.txt'"):
        load_paths([a / "notes.txt", b / "notes.txt"])
    # The same file twice is just loaded once.
    assert [d.text for d in load_paths([a / "notes.txt", a / "notes.txt"])] == ["One."]


def test_seed_folder_loads():
    docs = load_paths([SEEDS])
    assert [d.id for d in docs] == [SEED_FILE.name]
