"""The command line, in process with fake models (fast) and as a real
subprocess with the real models (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qa.cli import main
from qa.store import POINTER, IndexStore

from conftest import REPO, SEED_FILE, TINY_DOCS


@pytest.fixture
def corpus(write_docs):
    return write_docs(TINY_DOCS)


@pytest.fixture
def idx(tmp_path):
    return tmp_path / "index"


@pytest.fixture
def run(capsys, fake_models):
    def _run(*argv):
        rc = main([str(a) for a in argv], qa_factory=fake_models)
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


@pytest.fixture
def indexed(run, corpus, idx):
    rc, out, err = run("index", corpus, "--index", idx)
    assert rc == 0, err
    return idx


def assert_one_error_line(rc, out, err, *fragments):
    assert rc != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_index_and_docs(run, indexed):
    store = IndexStore.load(indexed)
    rc, out, err = run("docs", "--index", indexed)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 3
    counts = {}
    for c in store.chunks:
        counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
    for line in lines:
        doc_id, chunks, date, title = line.split("\t")
        assert chunks == f"{counts[doc_id]} chunks"
    assert any(line.startswith("beta.md\t") and line.endswith("\tBeta Harbour") for line in lines)


def test_index_reports_counts(run, corpus, idx):
    rc, out, err = run("index", corpus, "--index", idx)
    assert rc == 0
    store = IndexStore.load(idx)
    assert out.strip().splitlines()[-1] == f"3 documents, {len(store)} chunks in {idx}"
    assert out.startswith("3 added, 0 updated, 0 removed, 0 unchanged, 0 skipped, 0 failed")


def test_index_adds_and_rebuild_replaces(run, indexed, write_docs):
    extra = write_docs({"delta.txt": "Delta Farm keeps goats."}, folder="extra")
    rc, out, _ = run("index", extra / "delta.txt", "--index", indexed)
    assert rc == 0 and out.splitlines()[-1].startswith("4 documents")
    rc, out, _ = run("index", extra, "--index", indexed, "--rebuild")
    assert rc == 0 and out.startswith("1 documents")
    assert list(IndexStore.load(indexed).documents) == ["delta.txt"]


def test_seed_metadata_in_docs(run, idx):
    assert run("index", SEED_FILE, "--index", idx)[0] == 0
    rc, out, _ = run("docs", "--index", idx)
    assert out.strip().split("\t")[2:] == ["2023-07-13",
                                           "Russian General Sacked After Accusing Defense Ministry of Betrayal in Ukraine"]


def test_ask_text(run, indexed):
    rc, out, err = run("ask", "Who is Ingrid Solberg?", "--index", indexed)
    assert rc == 0, err
    assert out.startswith("Answer: Solberg   (confidence ")
    assert "[1] Beta Harbour (beta.md, § Beta Harbour, characters " in out  # Markdown: the section is cited
    assert ">>>Solberg<<<" in out


def test_ask_json(run, indexed):
    rc, out, err = run("ask", "Who is Ingrid Solberg?", "--json", "--index", indexed, "--top-k", "2")
    assert rc == 0, err
    a = json.loads(out)
    assert set(a) == {"question", "answer", "score", "citations", "no_answer_reason", "best_candidate",
                      "best_candidate_citation", "threshold", "timings"}
    assert set(a["timings"]) == {"retrieve_ms", "read_ms"}
    assert a["answer"] == "Solberg" and 0 <= a["score"] <= 1
    assert 1 <= len(a["citations"]) <= 2
    c = a["citations"][0]
    doc = TINY_DOCS[c["doc_id"]]
    assert doc[c["start"]:c["end"]] == c["text"]
    assert doc[c["answer_start"]:c["answer_end"]] == a["answer"]


def test_ask_no_answer(run, indexed):
    rc, out, _ = run("ask", "Quantum chromodynamics?", "--index", indexed)
    assert rc == 0
    assert out.startswith("Not in the documents (")
    assert "[1]" in out and ">>>" not in out


def test_remove(run, indexed):
    rc, out, err = run("remove", "beta.md", "gamma.txt", "--index", indexed)
    assert rc == 0, err
    assert out.startswith("1 documents, ")
    assert list(IndexStore.load(indexed).documents) == ["alpha.txt"]
    rc, out, err = run("remove", "nope.txt", "--index", indexed)
    assert_one_error_line(rc, out, err, "not in the index: nope.txt")


@pytest.mark.parametrize("question", ["", "   ", "x" * 1001])
def test_bad_question(run, indexed, question):
    rc, out, err = run("ask", question, "--index", indexed)
    assert_one_error_line(rc, out, err, "question")
    assert out == ""


def test_missing_file(run, tmp_path, idx):
    rc, out, err = run("index", tmp_path / "missing.txt", "--index", idx)
    assert_one_error_line(rc, out, err, "missing.txt", "no such file")
    assert not (idx / POINTER).exists()


def test_non_utf8_file(run, write_docs, idx):
    d = write_docs({"latin1.txt": "caf\u00e9".encode("latin-1")}, folder="bad")
    rc, out, err = run("index", d / "latin1.txt", "--index", idx)
    assert_one_error_line(rc, out, err, "latin1.txt", "not valid UTF-8")


def test_unsupported_and_empty(run, write_docs, idx):
    d = write_docs({"a.xyz": b"%PDF", "a.pdf": b"%PDF", "empty.txt": b""}, folder="odd")
    assert_one_error_line(*run("index", d / "a.xyz", "--index", idx), "unsupported file type")
    assert_one_error_line(*run("index", d / "a.pdf", "--index", idx), "a.pdf")  # a PDF cut short
    assert_one_error_line(*run("index", d / "empty.txt", "--index", idx), "empty")
    (d / "sub").mkdir()
    assert_one_error_line(*run("index", d / "sub", "--index", idx), "no .txt or .md files")


def test_corrupt_index(run, indexed):
    snap = indexed / (indexed / POINTER).read_text().strip()
    data = (snap / "vectors" / "vectors.faiss").read_bytes()
    (snap / "vectors" / "vectors.faiss").write_bytes(data[: len(data) // 2])
    for argv in (("ask", "Who is Ingrid Solberg?"), ("docs",), ("remove", "beta.md")):
        rc, out, err = run(*argv, "--index", indexed)
        assert_one_error_line(rc, out, err, "is corrupt", "--rebuild")
    # --rebuild recovers.
    rc, out, err = run("index", indexed.parent / "docs", "--index", indexed, "--rebuild")
    assert rc == 0, err
    assert run("docs", "--index", indexed)[0] == 0


def test_missing_index(run, tmp_path):
    rc, out, err = run("ask", "Who?", "--index", tmp_path / "none")
    assert_one_error_line(rc, out, err, "no index in", "qa index")


def test_one_bad_file_never_stops_the_rest(run, indexed, write_docs):
    _, before, _ = run("docs", "--index", indexed)
    bad = write_docs({"new.txt": "New text about Zeta Quarry.", "bad.txt": b"\xff\xfe"}, folder="bad")
    rc, out, err = run("index", bad, "--index", indexed)
    assert_one_error_line(rc, out, err, "bad.txt", "not valid UTF-8")
    assert out.startswith("1 added, 0 updated, 0 removed")
    _, after, _ = run("docs", "--index", indexed)
    assert set(after.splitlines()) - set(before.splitlines()) == {l for l in after.splitlines() if "new.txt" in l}
    assert "bad.txt" not in after
    rc, out, _ = run("ask", "Who is Ingrid Solberg?", "--index", indexed)
    assert rc == 0 and "Solberg" in out
    assert [p.name for p in indexed.iterdir() if p.name.startswith(".tmp")] == []


def test_index_folder_removes_deleted_and_skips_unchanged(run, corpus, idx):
    assert run("index", corpus, "--index", idx)[0] == 0
    (corpus / "gamma.txt").unlink()
    (corpus / "alpha.txt").write_text("Alpha Station moved south.", encoding="utf-8")
    rc, out, err = run("index", corpus, "--index", idx)
    assert rc == 0, err
    assert out.startswith("0 added, 1 updated, 1 removed, 1 unchanged")
    assert sorted(IndexStore.load(idx).documents) == ["alpha.txt", "beta.md"]


def test_write_failure_is_one_error_line(run, indexed, monkeypatch):
    import faiss

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", boom)
    rc, out, err = run("remove", "beta.md", "--index", indexed)
    assert_one_error_line(rc, out, err, "No space left on device")
    monkeypatch.undo()
    assert "beta.md" in IndexStore.load(indexed).documents


@pytest.mark.parametrize("argv", [
    ("ask", "q", "--top-k", "0"),
    ("ask", "q", "--top-k", "two"),
    ("ask", "q", "--min-score", "1.5"),
    ("ask",),
    ("index",),
    ("frobnicate",),
])
def test_usage_errors(run, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 2


def test_default_index_follows_env_and_seeds(run, tmp_path, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default"))
    rc, out, err = run("docs")
    assert rc == 0, err
    assert out.startswith(SEED_FILE.name + "\t")
    assert (tmp_path / "default" / POINTER).exists()


def test_repo_index_untouched_by_tests():
    # The session fixture points the default index at a temp folder.
    assert os.environ["QA_INDEX_DIR"] != str(REPO / "index")


def _subprocess(*argv, timeout=600):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "qa", *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)


def test_entry_point_error_exit(tmp_path):
    p = _subprocess("ask", "  ", "--index", tmp_path / "none", timeout=120)
    assert p.returncode == 1
    assert p.stderr.splitlines() == ["error: the question is empty: type a question about your documents"]
    assert p.stdout == ""


@pytest.mark.slow
def test_real_cli_ask_json(real_qa):
    p = _subprocess("ask", "Which army did General Popov command?", "--json", "--index", real_qa.settings.index_dir)
    assert p.returncode == 0, p.stderr
    a = json.loads(p.stdout)
    c = a["citations"][0]
    text = SEED_FILE.read_text(encoding="utf-8")
    assert text[c["start"]:c["end"]] == c["text"]
    assert "58th Combined Arms Army" in c["text"]
    assert "58th Combined Arms Army" in a["answer"]
    assert text[c["answer_start"]:c["answer_end"]] == a["answer"]


@pytest.mark.parametrize("lead", [[], ["-v"], ["--verbose"]])
def test_eval_subcommand_passes_options_through(monkeypatch, lead):
    # `qa eval --squad F ...` must reach qa.evaluate with its options intact, also
    # after the global -v (which used to reach args.func = None: "internal error").
    from qa import cli
    from qa.evaluation import cli as evaluate

    seen = {}
    monkeypatch.setattr(evaluate, "main", lambda argv: seen.setdefault("argv", argv) and 0)
    assert cli.main([*lead, "eval", "--squad", "x.json", "--mode", "reader", "--held-out"]) == 0
    assert seen["argv"] == ["--squad", "x.json", "--mode", "reader", "--held-out"]


def test_show_prints_the_stored_text(run, indexed):
    rc, out, err = run("show", "beta.md", "--index", indexed)
    assert rc == 0, err
    assert out == TINY_DOCS["beta.md"] + "\n"
    assert_one_error_line(*run("show", "nope.txt", "--index", indexed), "not in the index: nope.txt")


def test_info_says_what_runs_and_where_the_threshold_comes_from(run, indexed):
    from qa.store.threshold import save_threshold

    store = IndexStore.load(indexed)
    rc, out, err = run("info", "--index", indexed, "--json")
    assert rc == 0 and err == ""
    info = json.loads(out)
    assert info["index"]["documents"] == 3 and info["index"]["chunks"] == len(store)
    assert info["embedder"]["name"] == "fake/hashing-embedder"
    assert info["threshold"] == {"value": 0.5, "from": "the reader's calibration (chosen on validation articles)"}
    assert isinstance(info["cpu"]["native_bf16"], bool) and info["cpu"]["cores"] >= 1
    save_threshold(indexed, {"threshold": 0.3})
    rc, out, err = run("info", "--index", indexed)
    assert rc == 0 and err == ""
    assert "threshold  0.300, from `qa calibrate`, stored with the index" in out
    assert f"3 documents, {len(store)} chunks" in out


def test_a_file_reindexed_by_another_path_replaces_its_old_version(run, corpus, idx):
    # `qa index docs/` names it sub/z.txt; `qa index docs/sub/z.txt` names it z.txt. Both
    # used to stay indexed, the old text answering beside the new one.
    (corpus / "sub").mkdir()
    (corpus / "sub" / "z.txt").write_text("Zeta Quarry cuts granite.", encoding="utf-8")
    assert run("index", corpus, "--index", idx)[0] == 0
    (corpus / "sub" / "z.txt").write_text("Zeta Quarry cuts marble.", encoding="utf-8")
    rc, out, err = run("index", corpus / "sub" / "z.txt", "--index", idx)
    assert rc == 0, err
    assert out.startswith("0 added, 1 updated, 0 removed")
    docs = IndexStore.load(idx).documents
    assert sorted(docs) == sorted([*TINY_DOCS, "sub/z.txt"])
    assert docs["sub/z.txt"].text == "Zeta Quarry cuts marble."
    # and the other way round: the folder again finds the file under the id it has
    (corpus / "sub" / "z.txt").write_text("Zeta Quarry cuts slate.", encoding="utf-8")
    rc, out, err = run("index", corpus, "--index", idx)
    assert rc == 0 and out.startswith("0 added, 1 updated, 0 removed, 3 unchanged"), out + err
    assert IndexStore.load(idx).documents["sub/z.txt"].text == "Zeta Quarry cuts slate."


def test_a_file_that_now_repeats_another_loses_its_old_text(run, corpus, idx):
    # gamma.txt now holds alpha.txt's text: it is skipped as a duplicate, and its old
    # text, no longer in any file, must not stay indexed (it used to, and answered).
    assert run("index", corpus, "--index", idx)[0] == 0
    (corpus / "gamma.txt").write_bytes((corpus / "alpha.txt").read_bytes())
    rc, out, err = run("index", corpus, "--index", idx)
    assert rc == 0, err
    assert out.startswith("0 added, 0 updated, 1 removed, 2 unchanged, 1 skipped")
    assert "gamma.txt: the same text as 'alpha.txt'" in out
    assert sorted(IndexStore.load(idx).documents) == ["alpha.txt", "beta.md"]


def test_the_index_folder_inside_the_indexed_folder_is_not_read(run, corpus):
    # `qa index . --index my-index`: the index's own files used to come back as
    # "skipped: unsupported file type" lines, and its kept PDFs could be indexed.
    idx = corpus / "my-index"
    assert run("index", corpus, "--index", idx)[0] == 0
    (idx / "originals").mkdir()
    (idx / "originals" / "kept.txt").write_text("Kept copy about Omicron.", encoding="utf-8")
    rc, out, err = run("index", corpus, "--index", idx)
    assert rc == 0, err
    assert out.splitlines()[0] == "0 added, 0 updated, 0 removed, 3 unchanged, 0 skipped, 0 failed"
    assert "skipped:" not in out
    assert sorted(IndexStore.load(idx).documents) == sorted(TINY_DOCS)
    rc, out, err = run("index", corpus, "--index", idx, "--rebuild")
    assert rc == 0, err
    assert sorted(IndexStore.load(idx).documents) == sorted(TINY_DOCS)


@pytest.mark.parametrize("argv", [("index", "{docs}"), ("index", "--rebuild"), ("ask", "Who?"), ("docs",)])
def test_index_that_is_a_file_says_so(run, corpus, argv):
    # `--index notes.txt` used to say "notes.txt: File exists" or "the index pointer
    # notes.txt/CURRENT cannot be read (Not a directory)".
    not_a_folder = corpus / "alpha.txt"
    before = not_a_folder.read_bytes()
    argv = [a.format(docs=corpus) for a in argv]
    rc, out, err = run(*argv, "--index", not_a_folder)
    assert_one_error_line(rc, out, err, f"{not_a_folder} is a file, not an index folder")
    assert not_a_folder.read_bytes() == before


def test_a_successful_index_prints_nothing_on_stderr(corpus, idx):
    # bm25s sets its own logger to DEBUG, so every `qa index` and `qa remove` printed
    # "Building index from tokens" on stderr, where only errors belong.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fakes import make_fake_qa; from qa.cli import main; "
            "sys.exit(main(sys.argv[2:], qa_factory=make_fake_qa))")
    for argv in (("index", corpus), ("remove", "beta.md")):
        p = subprocess.run([sys.executable, "-c", code, str(REPO / "tests"), *map(str, argv), "--index", str(idx)],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
        assert p.returncode == 0, p.stderr
        assert p.stderr == ""


def test_backend_on_an_existing_index_says_it_is_kept(run, indexed, corpus):
    # `--backend` only chooses the vector index of a new index; on an existing one it
    # used to be ignored without a word, so a user believed the index had moved.
    rc, out, err = run("index", corpus, "--index", indexed, "--backend", "faiss-hnsw")
    assert rc == 0
    assert "keeps its vector backend faiss-flat" in err and "--rebuild" in err
    assert IndexStore.load(indexed).manifest.vector_index["name"] == "faiss-flat"
    rc, out, err = run("index", corpus, "--index", indexed, "--backend", "faiss-hnsw", "--rebuild")
    assert rc == 0 and "keeps" not in err
    assert IndexStore.load(indexed).manifest.vector_index["name"] == "faiss-hnsw"


def test_a_guess_just_below_the_threshold_does_not_read_as_equal_to_it(run, indexed):
    # A guess at 0.108 under the default 0.110 read "(confidence 0.11, threshold 0.11)" and
    # "scored 0.11, below the 0.11 threshold": both figures get the decimals that tell them apart.
    import re

    rc, out, err = run("ask", "Who is Ingrid Solberg?", "--json", "--index", indexed)
    assert rc == 0, err
    score = json.loads(out)["score"]
    threshold = score + 1e-4
    assert f"{threshold:.2f}" == f"{score:.2f}"  # what two decimals cannot tell apart
    rc, out, err = run("ask", "Who is Ingrid Solberg?", "--index", indexed, "--min-score", repr(threshold))
    assert rc == 0, err
    guess = re.search(r"^Low-confidence guess .*\(confidence ([\d.]+), threshold ([\d.]+)\)$", out, re.M)
    reason = re.search(r"^Not in the documents \(.*scored ([\d.]+), below the ([\d.]+) threshold\)\.$", out, re.M)
    assert guess and reason, out
    for shown_score, shown_threshold in (guess.groups(), reason.groups()):
        assert shown_score != shown_threshold, out
        assert float(shown_score) < float(shown_threshold)


def test_ask_json_stays_json_where_stdout_is_not_utf8(write_docs, fake_models, idx, monkeypatch):
    # Under a locale whose encoding lacks a character of the answer (LANG=C without UTF-8 mode,
    # Latin-1 and an emoji), the unencodable characters were printed as \xeb or \U0001f600:
    # not JSON escapes, so `qa ask --json | jq` failed.
    import io

    docs = write_docs({"cafe.txt": "The owner of the harbour café is Zoë Łukasz \U0001f600 since 1990."}, folder="u")
    assert main(["index", str(docs), "--index", str(idx)], qa_factory=fake_models) == 0
    raw = io.BytesIO()
    ascii_out = io.TextIOWrapper(raw, encoding="ascii", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", ascii_out)
    rc = main(["ask", "Who is Łukasz?", "--json", "--index", str(idx)], qa_factory=fake_models)
    ascii_out.flush()
    monkeypatch.undo()
    assert rc == 0
    a = json.loads(raw.getvalue().decode("ascii"))
    assert a["answer"] == "Łukasz"
    assert a["citations"][0]["text"].startswith("The owner of the harbour café is Zoë Łukasz \U0001f600")


def test_an_emptied_index_points_to_itself_not_the_default_one(run, indexed):
    # After `qa remove` of every document, `qa ask --index X` said "add some with `qa index PATH...`":
    # followed as written, that indexes into the default index, and X stays empty.
    assert run("remove", *TINY_DOCS, "--index", indexed)[0] == 0
    rc, out, err = run("ask", "Who is Ingrid Solberg?", "--index", indexed)
    assert_one_error_line(rc, out, err, "no documents are indexed", f"`qa index PATH... --index {indexed}`")


def test_non_ascii_arguments_typed_under_a_non_utf8_locale_are_read_as_utf8(write_docs, fake_models, idx, capsys):
    # Under LC_ALL=C without UTF-8 mode, Python hands `qa ask "Who is Łukasz?"` over as
    # surrogate escapes of its UTF-8 bytes: the question was refused ("holds a character
    # that is not valid text") and `qa show café.txt` / `qa remove café.txt` found no such id.
    import os

    docs = write_docs({"café.txt": "The owner of the harbour café is Zoë Łukasz since 1990."}, folder="u")
    assert main(["index", str(docs), "--index", str(idx)], qa_factory=fake_models) == 0
    capsys.readouterr()

    def as_under_c_locale(text: str) -> str:
        return text.encode("utf-8").decode("ascii", "surrogateescape")

    assert main(["ask", as_under_c_locale("Who is Łukasz?"), "--json", "--index", str(idx)],
                qa_factory=fake_models) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == "Łukasz"
    assert main(["show", as_under_c_locale("café.txt"), "--index", str(idx)], qa_factory=fake_models) == 0
    assert capsys.readouterr().out.startswith("The owner of the harbour café")
    assert main(["remove", as_under_c_locale("café.txt"), "--index", str(idx)], qa_factory=fake_models) == 0
    assert IndexStore.load(idx).documents == {}
    assert os.fsencode(as_under_c_locale("café.txt")) == "café.txt".encode("utf-8")  # what the shell passed


def test_an_answer_across_a_line_break_prints_on_its_answer_line(capsys, write_docs, tmp_path):
    """A PDF's answer may hold its line break ("Margit\\nHalvorsen"): verbatim, as
    it must be, but `qa ask` printed the headline over two lines, the second
    looking like the start of the passages. The headline joins it with a space;
    the passage below keeps the exact text."""
    from fakes import FakeReader, make_fake_qa

    class TwoLineReader(FakeReader):  # the matched word and the word on the next line
        def run(self, questions, passages):
            from dataclasses import replace

            out = []
            for r, ps in zip(super().run(questions, passages), passages):
                spans = []
                for s in r.spans:
                    nxt = ps[s.passage].find("\n", s.end)
                    spans.append(replace(s, end=nxt + 1 + len(ps[s.passage][nxt + 1:].split()[0])))
                out.append(replace(r, spans=spans))
            return out

    docs = write_docs({"keeper.txt": "The lighthouse keeper is Margit\nHalvorsen, since 1990.\n"})
    factory = lambda **kw: make_fake_qa(reader=TwoLineReader(), **kw)  # noqa: E731
    assert main(["index", str(docs), "--index", str(tmp_path / "i")], qa_factory=factory) == 0
    capsys.readouterr()
    assert main(["ask", "Who is Margit?", "--index", str(tmp_path / "i"), "--min-score", "0"], qa_factory=factory) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("Answer: Margit Halvorsen,   (confidence ")
    assert ">>>Margit\n    Halvorsen,<<<" in out  # the passage: the text as it is


def test_show_png_dash_writes_the_png_to_stdout(corpus, idx, fake_models, capsysbinary, monkeypatch, tmp_path):
    """`qa show DOC --png -` wrote a file literally named '-' in the current folder and
    said so; '-' is stdout, as everywhere else on a command line (`> page.png`, `| display`)."""
    from qa.pages import RenderedPage

    png = b"\x89PNG\r\n\x1a\n" + b"fake page"
    monkeypatch.setattr("qa.pages.render_document_page",
                        lambda doc, page, highlight, *a, **k: RenderedPage(page or 1, png, 10, 20))
    assert main(["index", str(corpus), "--index", str(idx)], qa_factory=fake_models) == 0
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    capsysbinary.readouterr()
    rc = main(["show", "beta.md", "--index", str(idx), "--png", "-"], qa_factory=fake_models)
    out, err = capsysbinary.readouterr()
    assert rc == 0, err
    assert out == png and err == b""
    assert list(here.iterdir()) == []
    # on a terminal the bytes would garble it: refused, with what to do instead
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    rc = main(["show", "beta.md", "--index", str(idx), "--png", "-"], qa_factory=fake_models)
    out, err = capsysbinary.readouterr()
    assert rc == 2 and out == b"" and err.decode().startswith("error: --png -: ") and err.count(b"\n") == 1
    assert list(here.iterdir()) == []


def _index_help(parser, command: str) -> str:
    sub = next(a for a in parser._actions if a.dest == "command")
    action = next(a for a in sub.choices[command]._actions if "--index" in a.option_strings)
    return action.help % {"default": action.default}


SYNCING = ("ask", "calibrate", "docs", "info", "show")


def test_the_index_help_states_the_real_default_of_each_command(monkeypatch):
    """Every --index said "(default: index/, kept in step with seeds/)": the default is
    QA_INDEX_DIR or the checkout's index/ (./index outside a checkout), the corpus it follows
    QA_CORPUS_DIR or the checkout's seeds/ (none outside one), and `qa index` and `qa remove`
    never sync it (a plain `qa index X` adds X to it, seeds/ or not)."""
    from qa.cli import build_parser

    monkeypatch.setenv("QA_INDEX_DIR", "/srv/qa/myindex")
    monkeypatch.setenv("QA_CORPUS_DIR", "/srv/qa/mydocs")
    parser = build_parser()
    for command in SYNCING + ("index", "remove"):
        text = _index_help(parser, command)
        assert "/srv/qa/myindex" in text and "index/," not in text, (command, text)
        assert ("kept in step with /srv/qa/mydocs" in text) == (command in SYNCING), (command, text)
        assert "seeds/" not in text, (command, text)
    monkeypatch.delenv("QA_CORPUS_DIR")
    monkeypatch.setattr("qa.config._default_corpus", lambda: None)  # as when installed, not in a checkout
    parser = build_parser()
    for command in SYNCING + ("index", "remove"):
        assert "kept in step" not in _index_help(parser, command), command
    import app

    app_help = next(a for a in app.build_parser()._actions if "--index" in a.option_strings).help
    assert "/srv/qa/myindex" in app_help and "seeds/" not in app_help


def test_removing_a_followed_folders_file_from_the_default_index_says_it_comes_back(run, corpus, tmp_path,
                                                                                     monkeypatch):
    """`qa remove` on the default index, of a document whose file is still in the folder
    that index follows (seeds/, QA_CORPUS_DIR), said "2 documents left" and nothing else;
    the next `qa ask` (or the app) synced the folder and the document was back. It now
    says so and how to remove it for good; a named index, which follows nothing, does not."""
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default-index"))
    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    assert run("docs")[0] == 0  # the default index, built from the followed folder
    rc, out, err = run("remove", "beta.md")
    assert rc == 0 and out.startswith("2 documents"), out + err
    assert "beta.md" in err and "comes back" in err and str(corpus / "beta.md") in err, err
    rc, out, err = run("docs")
    assert rc == 0 and "beta.md" in out  # what the note foretold
    (corpus / "beta.md").unlink()
    assert run("docs")[0] == 0
    rc, out, err = run("remove", "gamma.txt", "--index", tmp_path / "default-index")
    assert rc == 0 and "comes back" in err  # the same index named by its path

    monkeypatch.delenv("QA_CORPUS_DIR")
    other = tmp_path / "other"
    assert run("index", corpus, "--index", other)[0] == 0
    rc, out, err = run("remove", "alpha.txt", "--index", other)
    assert rc == 0 and err == "", err
