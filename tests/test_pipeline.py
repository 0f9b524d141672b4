"""The QA pipeline. Fast tests run on fake models (plumbing: validation, merging,
offsets, index sync); tests marked slow use the real embedder and reader."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

import qa
from qa import errors
from qa.config import BM25Config, Settings
from qa.answering import antecedent, reader_question
from qa.pipeline import QA, merge_hits, retrieval_query
from qa.retrieval import Hit
from qa.store import IndexStore

from conftest import SEED_FILE, SEED_TITLE, SEEDS, TINY_DOCS, FakeEmbedder, make_doc

POPOV = "Which army did General Popov command?"


@pytest.fixture
def corpus(write_docs):
    return write_docs(TINY_DOCS)


@pytest.fixture
def fake_qa(fake_models, corpus, tmp_path):
    return fake_models(index_dir=tmp_path / "index", corpus_dir=corpus)


def check_citations(q: QA, a) -> None:
    """The citation invariants every answer must satisfy."""
    assert a.citations, "there is always at least one passage to show"
    for c in a.citations:
        doc = q.store.documents[c.doc_id]
        assert doc.text[c.start:c.end] == c.text
        assert c.title == doc.title
        assert 0.0 <= c.score <= 1.0
    if a.found:
        c = a.citations[0]
        doc = q.store.documents[c.doc_id]
        assert a.answer in doc.text[c.start:c.end]
        assert doc.text[c.answer_start:c.answer_end] == a.answer
        assert c.start <= c.answer_start < c.answer_end <= c.end
        assert 0.0 <= a.score <= 1.0
    else:
        assert a.no_answer_reason
        assert all(c.answer_start == c.answer_end == -1 for c in a.citations)


# --- questions ------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("x" * 1001, "1001 characters long; the limit is 1000"),
    (None, "must be a string"),
    (42, "must be a string"),
])
def test_bad_questions(fake_qa, bad, match):
    with pytest.raises(errors.QuestionError, match=match):
        fake_qa.ask(bad)
    with pytest.raises(ValueError):  # QuestionError is a ValueError too
        fake_qa.ask_batch(["fine question", bad])


def test_question_limit_counts_stripped_text(fake_qa):
    assert fake_qa.ask("  " + "harbour " * 124 + "x  ").question.startswith("harbour")  # 994 chars: fine
    a = fake_qa.ask("  Who is Ingrid Solberg?  \n")
    assert a.question == "Who is Ingrid Solberg?"


def test_bad_questions_fail_before_loading_anything(tmp_path, fake_models):
    q = fake_models(index_dir=tmp_path / "never", corpus_dir=tmp_path / "nothing-here")
    with pytest.raises(errors.QuestionError):
        q.ask(" ")
    assert not (tmp_path / "never").exists()


def test_empty_corpus_folder(tmp_path, fake_models):
    (tmp_path / "empty").mkdir()
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=tmp_path / "empty")
    with pytest.raises(errors.EmptyCorpusError, match="no .txt or .md files"):
        q.ask("Anything?")


def test_empty_index(fake_qa):
    fake_qa.remove_documents(list(TINY_DOCS))
    with pytest.raises(errors.EmptyCorpusError, match="no documents are indexed"):
        fake_qa.ask("Who is Ingrid Solberg?")


def test_bad_top_k(fake_qa):
    with pytest.raises(ValueError, match="top_k"):
        fake_qa.ask("Who is Ingrid Solberg?", top_k=0)


# --- merging retrieved chunks ----------------------------------------------------

@pytest.fixture
def hand_store():
    """Hand-made chunks: a0-a1 overlap, a1-a2 overlap, a0-a2 do not; a3 is apart."""
    import numpy as np

    from qa.store import Manifest
    from qa.types import Chunk

    a = make_doc("a.txt", "One two. Three four. Five six. Seven eight. Nine ten. Eleven twelve.")
    b = make_doc("b.txt", "Other doc here. And more.")
    spans = [("a.txt", 0, 20), ("a.txt", 9, 30), ("a.txt", 21, 43), ("a.txt", 55, 69), ("b.txt", 0, 25)]
    docs = {"a.txt": a, "b.txt": b}
    chunks = [Chunk(d, s, e, docs[d].text[s:e]) for d, s, e in spans]
    from qa.store.backends import Bm25Index, FaissFlatIndex

    m = Manifest(1, {}, {}, {}, {}, len(chunks), 0.0)
    ids = np.arange(len(chunks))
    vectors = FaissFlatIndex(8)
    vectors.add(ids, np.eye(len(chunks), 8, dtype=np.float32))
    return IndexStore(m, docs, chunks, ids, vectors, Bm25Index.build(ids, [c.text for c in chunks]))


def test_merge_hits_merges_overlapping_chunks_of_a_document(hand_store):
    c = hand_store.chunks
    passages = merge_hits(hand_store, [Hit(4, 0.9), Hit(1, 0.8), Hit(0, 0.5)])
    assert [p.doc_id for p in passages] == ["b.txt", "a.txt"]  # order of each group's best hit
    p = passages[1]
    assert (p.start, p.end) == (0, 30)
    assert p.text == hand_store.documents["a.txt"].text[0:30]
    assert p.chunks == (c[0], c[1])
    assert p.retrieval_score == 0.8


def test_merge_hits_bridging_chunk_joins_two_groups(hand_store):
    c = hand_store.chunks
    passages = merge_hits(hand_store, [Hit(0, 3.0), Hit(2, 2.0), Hit(1, 1.0)])
    assert len(passages) == 1
    assert (passages[0].start, passages[0].end) == (0, 43)
    assert passages[0].chunks == (c[0], c[1], c[2])
    assert passages[0].retrieval_score == 3.0


def test_merge_hits_keeps_separate_documents_and_gaps(hand_store):
    # a0 (0-20) and a2 (21-43) are one space apart: neighbours, merged (next test);
    # a3 (55-69) is apart from both by words, b is another document.
    passages = merge_hits(hand_store, [Hit(0, 1.0), Hit(3, 0.4), Hit(4, 0.3)])
    assert [(p.doc_id, p.start, p.end) for p in passages] == [("a.txt", 0, 20), ("a.txt", 55, 69), ("b.txt", 0, 25)]
    assert merge_hits(hand_store, []) == []


def test_merge_hits_joins_neighbouring_chunks_with_only_white_space_between(hand_store):
    # Chunks that do not overlap (a run-on sentence cut at max_words, or no room
    # for the overlap sentence) sit one space apart: retrieved together, they were
    # read apart, so an answer across the cut came out in halves, cited twice.
    c = hand_store.chunks
    passages = merge_hits(hand_store, [Hit(2, 1.0), Hit(0, 0.5)])
    assert len(passages) == 1
    assert (passages[0].start, passages[0].end) == (0, 43)
    assert passages[0].text == hand_store.documents["a.txt"].text[0:43]
    assert passages[0].chunks == (c[0], c[2])


def test_merge_hits_on_real_chunks(tiny_store):
    merged = merge_hits(tiny_store, [Hit(i, 1.0) for i in range(len(tiny_store))])
    for p in merged:
        assert p.text == tiny_store.documents[p.doc_id].text[p.start:p.end]
        assert p.start == p.chunks[0].start and p.end == max(c.end for c in p.chunks)
    # Passages of one document never overlap each other.
    for x in merged:
        for y in merged:
            if x is not y and x.doc_id == y.doc_id:
                assert x.end < y.start or y.end < x.start
    assert sum(len(p.chunks) for p in merged) == len(tiny_store)


def test_reader_question_reads_her_as_possessive_before_a_noun():
    """'her' is both 'him' and 'his': "What was her name?" reached the reader as
    "What was Hilda Brandt name?" (only 'his' got the 's). Before a noun it is
    possessive; at the end, or before a preposition, article or conjunction, it is not."""
    who = [("Who found the sextant?", "Hilda Brandt")]
    assert reader_question("What was her name?", who) == "What was Hilda Brandt's name?"
    assert reader_question("Where did she keep her old letters?", who) == \
        "Where did Hilda Brandt keep Hilda Brandt's old letters?"
    assert reader_question("When did the captain meet her?", who) == "When did the captain meet Hilda Brandt?"
    assert reader_question("Who gave her the medal?", who) == "Who gave Hilda Brandt the medal?"
    assert reader_question("What did the captain tell her about the map?", who) == \
        "What did the captain tell Hilda Brandt about the map?"
    assert reader_question("Did they pay her, and when?", who) == "Did they pay Hilda Brandt, and when?"


def test_reader_question_puts_the_person_back():
    who = [("Who commanded the 58th Combined Arms Army?", "General Popov")]
    assert reader_question("Whom did he accuse of treason?", who) == "Whom did General Popov accuse of treason?"
    assert reader_question("What was his rank?", who) == "What was General Popov's rank?"
    # the person named in the previous question when it was not a "who" question
    assert antecedent([("Which army did Popov command?", "the 58th Combined Arms Army")]) == "Popov"
    # no history, a declined "who", a question naming the person already: unchanged
    assert reader_question("Whom did he accuse?", None) == "Whom did he accuse?"
    assert reader_question("Whom did he accuse?", [("Who led it?", "")]) == "Whom did he accuse?"
    assert reader_question("Did Popov say he was dismissed?", who) == "Did Popov say he was dismissed?"
    # words that merely contain a pronoun are left alone
    assert reader_question("Where is the shed?", who) == "Where is the shed?"


def test_retrieval_query():
    h = [("Which army did Popov command?", "the 58th Combined Arms Army"), ("Q2", "A2"), ("Q3", "A3")]
    assert retrieval_query("Whom did he accuse?", None, 2) == "Whom did he accuse?"
    assert retrieval_query("Whom did he accuse?", h, 0) == "Whom did he accuse?"
    assert retrieval_query("Whom?", h[:1], 2) == "Whom? Which army did Popov command? the 58th Combined Arms Army"
    assert retrieval_query("Whom?", h, 2) == "Whom? Q2 A2 Q3 A3"


# --- answers and citations (fake reader: offsets only) ---------------------------

def test_answer_offsets_map_into_the_document(fake_qa):
    a = fake_qa.ask("Who is Ingrid Solberg?")
    assert a.answer == "Solberg"  # FakeReader picks the question's longest word
    assert a.citations[0].doc_id == "beta.md"
    check_citations(fake_qa, a)
    a = fake_qa.ask("When did the turbine arrive?", top_k=3)
    assert a.answer == "turbine" and a.citations[0].doc_id == "gamma.txt"
    check_citations(fake_qa, a)


def test_no_answer_still_cites_passages(fake_qa):
    a = fake_qa.ask("Quantum chromodynamics?", top_k=2)
    assert a.answer == "" and not a.found
    check_citations(fake_qa, a)
    assert a.citations


def test_ask_batch_matches_ask(fake_qa):
    qs = ["Who is Ingrid Solberg?", "When did the turbine arrive?", "helicopter supplies"]
    batch = fake_qa.ask_batch(qs)
    assert [x.answer for x in batch] == [fake_qa.ask(q).answer for q in qs]


def test_read_exposes_what_ask_answers_from(fake_qa):
    qs = ["Who is Ingrid Solberg?", "Quantum chromodynamics?"]
    passages, results = fake_qa.read(qs)
    answers = fake_qa.ask_batch(qs, min_score=0.0)
    sp = results[0].spans[0]
    assert passages[0][sp.passage].text[sp.start:sp.end] == answers[0].answer == "Solberg"
    assert passages[0][sp.passage].doc_id == answers[0].citations[0].doc_id
    assert results[1].spans == [] and answers[1].answer == ""
    with pytest.raises(errors.QuestionError):
        fake_qa.read(["  "])


def test_follow_up_fuses_history(fake_qa):
    first = fake_qa.ask("Who is Ingrid Solberg?")
    a = fake_qa.ask("What colour was the lighthouse painted?", history=[(first.question, first.answer)])
    check_citations(fake_qa, a)
    assert a.citations[0].doc_id == "beta.md"


# --- index life cycle (fake embedder) --------------------------------------------

def test_index_built_on_first_use_and_reused(fake_qa, fake_models, tmp_path):
    assert not (tmp_path / "index").exists()
    assert sorted(d.id for d, _ in fake_qa.documents()) == sorted(TINY_DOCS)
    assert (tmp_path / "index" / "CURRENT").exists()
    again = fake_models(index_dir=tmp_path / "index", corpus_dir=fake_qa.settings.corpus_dir)
    again.store
    assert again.embedder.texts_embedded == 0, "an up-to-date index is loaded, not rebuilt"


def test_corpus_folder_changes_are_synced(fake_qa, fake_models, corpus, tmp_path):
    fake_qa.store
    (corpus / "delta.txt").write_text("Delta Farm keeps goats.", encoding="utf-8")
    (corpus / "gamma.txt").unlink()
    (corpus / "alpha.txt").write_text("Alpha Station moved south.", encoding="utf-8")
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=corpus)
    docs = {d.id: d for d, n in q.documents()}
    assert sorted(docs) == ["alpha.txt", "beta.md", "delta.txt"]
    assert docs["alpha.txt"].text == "Alpha Station moved south."
    # Only the new and the changed document were embedded.
    assert q.embedder.texts_embedded == 2


def test_one_bad_file_in_the_corpus_folder_never_stops_questions(fake_qa, fake_models, corpus, tmp_path, caplog):
    # A file that cannot be read, dropped into the folder the index follows, used to
    # make every question fail ("not valid UTF-8") although the index was fine.
    fake_qa.store
    (corpus / "bad.txt").write_bytes(b"\xff\xfe not UTF-8")
    (corpus / "delta.txt").write_text("Delta Farm keeps goats.", encoding="utf-8")
    (corpus / "alpha.txt").write_bytes(b"")  # now empty: its indexed version stays
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=corpus)
    with caplog.at_level("WARNING", logger="qa"):
        a = q.ask("Who is Ingrid Solberg?")
    assert a.answer == "Solberg"
    docs = {d.id: d for d, _ in q.documents()}
    assert sorted(docs) == ["alpha.txt", "beta.md", "delta.txt", "gamma.txt"]  # the good new file went in
    assert docs["alpha.txt"].text == TINY_DOCS["alpha.txt"]
    assert "bad.txt" in caplog.text and "not valid UTF-8" in caplog.text
    assert "alpha.txt" in caplog.text and "empty" in caplog.text


def test_missing_corpus_folder_removes_nothing(fake_qa, fake_models, corpus, tmp_path, caplog):
    fake_qa.store
    corpus.rename(tmp_path / "elsewhere")  # an unmounted drive, a renamed folder
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=corpus)
    with caplog.at_level("WARNING", logger="qa"):
        assert sorted(d.id for d, _ in q.documents()) == sorted(TINY_DOCS)
    assert "no such file" in caplog.text
    with pytest.raises(errors.DocumentNotFoundError, match="no such file"):  # nothing to build from
        fake_models(index_dir=tmp_path / "other-index", corpus_dir=corpus).store


def test_added_document_survives_sync(fake_qa, fake_models, tmp_path):
    fake_qa.add_documents([make_doc("upload.txt", "Epsilon Bridge spans the Ostra river.")])
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=fake_qa.settings.corpus_dir)
    assert "upload.txt" in {d.id for d, _ in q.documents()}


def test_add_and_remove_documents(fake_qa):
    fake_qa.add_documents([make_doc("delta.txt", "Delta Farm keeps goats. The goats give milk.")])
    a = fake_qa.ask("Which animals does Delta Farm keep?", top_k=2)
    assert any(c.doc_id == "delta.txt" for c in a.citations)
    fake_qa.remove_documents(["delta.txt"])
    assert "delta.txt" not in {d.id for d, _ in fake_qa.documents()}
    a = fake_qa.ask("Which animals does Delta Farm keep?", top_k=10)
    assert all(c.doc_id != "delta.txt" for c in a.citations)
    with pytest.raises(errors.DocumentNotIndexedError) as e:
        fake_qa.remove_documents(["nope.txt", "delta.txt"])
    assert str(e.value) == "not in the index: nope.txt, delta.txt"
    assert isinstance(e.value, KeyError) and isinstance(e.value, errors.QAError)


def test_failed_add_keeps_previous_index(fake_qa, write_docs, tmp_path):
    before = {d.id for d, _ in fake_qa.documents()}
    bad = write_docs({"ok.txt": "Fine text.", "bad.txt": b"\xff\xfe"}, folder="bad")
    with pytest.raises(errors.DocumentEncodingError):
        fake_qa.add_paths([bad])
    assert {d.id for d, _ in fake_qa.documents()} == before
    assert {d for d in IndexStore.load(tmp_path / "index").documents} == before


def test_stale_index_is_rebuilt_with_corpus_and_refused_without(fake_qa, fake_models, tmp_path):
    fake_qa.store

    class OtherWeights(FakeEmbedder):
        def __init__(self, **kw):
            super().__init__(sha256="other-weights")

    with pytest.raises(errors.IndexStaleError, match="different embedding model.*--rebuild"):
        fake_models(index_dir=tmp_path / "index", corpus_dir=None, embedder=OtherWeights()).store
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=fake_qa.settings.corpus_dir, embedder=OtherWeights())
    assert q.store.manifest.embedder["sha256"] == "other-weights"
    assert q.embedder.texts_embedded == len(q.store)


def test_index_with_other_bm25_settings_is_rebuilt(fake_qa, fake_models, tmp_path):
    fake_qa.store
    other = replace(Settings(), bm25=BM25Config(k1=0.123))
    with pytest.raises(errors.IndexStaleError, match="different BM25 settings"):
        fake_models(index_dir=tmp_path / "index", corpus_dir=None, settings=other).store
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=fake_qa.settings.corpus_dir, settings=other)
    assert q.store.manifest.bm25["k1"] == 0.123
    assert IndexStore.load(tmp_path / "index").manifest.bm25["k1"] == 0.123


def test_missing_index_without_corpus(tmp_path, fake_models):
    with pytest.raises(errors.IndexMissingError, match="qa index"):
        fake_models(index_dir=tmp_path / "none", corpus_dir=None).ask("Who?")


def test_default_qa_is_shared_and_uses_env(tmp_path, monkeypatch, fake_models):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default-index"))
    qa._default = None
    first = qa.default_qa()
    assert first is qa.default_qa()
    assert first.settings.index_dir == tmp_path / "default-index"
    assert first.settings.corpus_dir == SEEDS
    from qa.api import QA as WiredQA

    assert qa.QA is WiredQA and issubclass(WiredQA, QA)
    assert isinstance(first, WiredQA) and first.calibrator is not None  # `calibrate` works on it


# --- real models (slow) ----------------------------------------------------------

@pytest.mark.slow
def test_real_retrieval_finds_the_popov_sentence(real_qa):
    [chunks] = real_qa.retrieve([POPOV])
    assert any("58th Combined Arms Army" in c.text for c in chunks)
    assert all(real_qa.store.documents[c.doc_id].text[c.start:c.end] == c.text for c in chunks)


@pytest.mark.slow
def test_real_popov_answer(real_qa):
    a = real_qa.ask(POPOV)
    check_citations(real_qa, a)
    assert "58th Combined Arms Army" in a.citations[0].text
    assert "58th Combined Arms Army" in a.answer
    assert a.citations[0].title == SEED_TITLE
    assert a.citations[0].doc_id == SEED_FILE.name


QUESTIONS = [
    POPOV,
    "Who made the voice memo public?",
    "Whom did Popov accuse of treason?",
    "Which missile struck the hotel in Berdyansk?",
    "Where was the voice memo posted?",
    "When was General Popov dismissed?",
]


@pytest.mark.slow
def test_real_citation_invariants(real_qa):
    # min_score=0 makes the reader always answer with its best span, so the
    # offsets are checked whatever the model's confidence.
    answers = real_qa.ask_batch(QUESTIONS, min_score=0.0)
    for a in answers:
        assert a.found, a
        check_citations(real_qa, a)
        assert len(a.answer) < 200
    # The default threshold only changes whether to answer, never where from.
    for a, b in zip(answers, real_qa.ask_batch(QUESTIONS)):
        check_citations(real_qa, b)
        if b.found:
            assert (b.answer, b.citations[0].answer_start) == (a.answer, a.citations[0].answer_start)


@pytest.mark.slow
def test_real_follow_up_with_history(real_qa):
    first = real_qa.ask(POPOV)
    # min_score=0: this checks that the history resolves "he" to the right
    # passage and span; whether the default threshold answers is the seed floors' job.
    a = real_qa.ask("Whom did he accuse of treason?", history=[(POPOV, first.answer)], min_score=0.0)
    check_citations(real_qa, a)
    assert "Shoigu" in a.answer


@pytest.mark.slow
def test_real_add_then_remove_document(fresh_real_qa):
    q = fresh_real_qa
    text = ("The Varnholt Observatory opened in 1874 on the island of Skarvik. "
            "It was founded by the astronomer Helga Marsh, who catalogued 3,000 double stars there. "
            "The observatory closed in 1961 after a storm destroyed its dome.")
    q.add_documents([make_doc("varnholt.txt", text, title="Varnholt Observatory")])
    question = "Who founded the Varnholt Observatory?"
    added = q.ask(question)
    check_citations(q, added)
    assert added.citations[0].doc_id == "varnholt.txt"
    q.remove_documents(["varnholt.txt"])
    assert "varnholt.txt" not in {d.id for d, _ in q.documents()}
    a = q.ask(question)
    check_citations(q, a)
    assert all(c.doc_id != "varnholt.txt" for c in a.citations)
    assert "Helga" not in a.answer
    # And from disk too.
    assert "varnholt.txt" not in IndexStore.load(q.settings.index_dir).documents
    assert "Helga Marsh" in added.answer  # reader quality: checked last so the plumbing above always runs


def _run_on_sentence_with_a_name_across_the_cut() -> str:
    """One sentence of more than 100 words (chunking.max_words) whose 99th to 101st
    words are the answer, so the chunker cuts it between "Ferdinand" and "Kowalczyk"."""
    from qa.chunking import count_words

    text = ("The inventory of the western storeroom listed rope, tar, canvas, lanterns, barrels of salt cod, "
            "spare oars, nets, hooks")
    n = 0
    while count_words(text) < 88:
        n += 1
        text += f", crate {n} of nails"
    text += ","
    while count_words(text) < 93:
        text += " old"
    text += " and the brass sextant of"
    assert count_words(text) == 98
    return (text + " admiral Ferdinand Kowalczyk, which was kept in a locked cabinet near the door, together with "
            + ", ".join(f"chart {i}" for i in range(20)) + ".")


@pytest.mark.slow
def test_real_answer_across_a_chunk_cut_is_read_whole(real_qa, tmp_path):
    q = QA(index_dir=tmp_path / "index", corpus_dir=None, settings=real_qa.settings, embedder=real_qa.embedder,
           reader=real_qa.reader, retriever=real_qa.retriever)
    text = _run_on_sentence_with_a_name_across_the_cut()
    q.add_documents([make_doc("runon.txt", text),
                     make_doc("other.txt", "The harbour office opened in 1875. Its first clerk was Ida Berg.")])
    cut = q.store.chunks[0].end
    assert text[:cut].endswith("admiral Ferdinand") and q.store.chunks[1].text.startswith("Kowalczyk")
    a = q.ask("Who owned the brass sextant?", min_score=0.0)
    check_citations(q, a)
    # Both halves were retrieved and cited; read apart, the answer was 'admiral Ferdinand'.
    assert a.citations[0].start < cut < a.citations[0].end
    assert sum(c.doc_id == "runon.txt" for c in a.citations) == 1
    assert a.answer == "admiral Ferdinand Kowalczyk"


@pytest.mark.slow
@pytest.mark.parametrize("text, question, answer", [
    ("The door is blue. The door is blue. The door is blue. The window is green.", "What colour is the door?", "blue"),
    ("The password is tangerine. " * 15 + "Nobody else knows the password.", "What is the password?", "tangerine"),
])
def test_real_text_that_repeats_its_answer_gives_the_answer_once(real_qa, tmp_path, text, question, answer):
    # The best start and the best end fell in different copies: the answer was
    # 'blue. The door is blue. The door is blue. The window is green'.
    q = QA(index_dir=tmp_path / "index", corpus_dir=None, settings=real_qa.settings, embedder=real_qa.embedder,
           reader=real_qa.reader, retriever=real_qa.retriever)
    q.add_documents([make_doc("repeats.txt", text)])
    a = q.ask(question, min_score=0.0)
    check_citations(q, a)
    assert a.answer == answer


@pytest.mark.slow
def test_real_default_instance_loads_models_once(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default-index"))
    monkeypatch.setenv("QA_CORPUS_DIR", str(SEEDS))
    qa._default = None
    a1 = qa.ask(POPOV)
    inst = qa.default_qa()
    reader_model, embed_model, store = inst.reader._model, inst.embedder._model, inst.store
    a2 = qa.ask("Whom did he accuse of treason?", history=[(POPOV, a1.answer)])
    assert qa.default_qa() is inst
    assert inst.reader._model is reader_model is not None
    assert inst.embedder._model is embed_model is not None
    assert inst.store is store
    assert (tmp_path / "default-index" / "CURRENT").exists(), "the default index honours QA_INDEX_DIR"
    for a in (a1, a2):
        check_citations(inst, a)
    assert os.environ.get("QA_INDEX_DIR") == str(tmp_path / "default-index")


def test_index_exactly_reuses_only_an_identical_index(fake_models, tmp_path):
    docs = [make_doc("a.txt", "Alpha has apples."), make_doc("b.txt", "Beta has bananas.")]
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=None)
    assert q.index_exactly(docs) is True
    again = fake_models(index_dir=tmp_path / "index", corpus_dir=None)
    assert again.index_exactly(docs) is False  # same texts, same settings: reused from disk
    assert again.index_exactly(docs[:1]) is True  # an extra document is not "exactly"
    assert {d.id for d, _ in again.documents()} == {"a.txt"}
    changed = [make_doc("a.txt", "Alpha has apricots.")]
    assert again.index_exactly(changed) is True
    assert again.store.documents["a.txt"].text == "Alpha has apricots."


@pytest.mark.parametrize("bad", ["\x00", "?!", " \x00 \x01 "])
def test_questions_without_words_are_refused(fake_qa, bad):
    with pytest.raises(errors.QuestionError, match="no words"):
        fake_qa.ask(bad)


@pytest.mark.parametrize("bad", [None, "one question", 42])
def test_ask_batch_needs_a_list(fake_qa, bad):
    with pytest.raises(errors.ArgumentError, match="list of strings"):
        fake_qa.ask_batch(bad)


@pytest.mark.parametrize("call", ["read", "retrieve"])
@pytest.mark.parametrize("bad", ["one question", None, 42])
def test_read_and_retrieve_need_a_list(fake_qa, call, bad):
    """A bare string was read as one question per character (five answers for "Alpha")."""
    with pytest.raises(errors.ArgumentError, match="list of strings"):
        getattr(fake_qa, call)(bad)


@pytest.mark.parametrize("call", ["read", "retrieve"])
@pytest.mark.parametrize("bad, match", [(None, "must be a string"), ("  ", "empty"), ("x" * 1001, "the limit")])
def test_read_and_retrieve_check_each_question(fake_qa, call, bad, match):
    """retrieve([None]) was an AttributeError from inside the embedder; retrieve([""]) searched for nothing."""
    with pytest.raises(errors.QuestionError, match=match):
        getattr(fake_qa, call)(["Who is Ingrid Solberg?", bad])


def test_ask_batch_histories_must_be_a_list(fake_qa):
    """A generator of histories was a bare TypeError (object of type 'generator' has no len())."""
    with pytest.raises(errors.ArgumentError, match="histories must be a list"):
        fake_qa.ask_batch(["Who is Ingrid Solberg?"], (h for h in [None]))
    assert fake_qa.ask_batch(["Who is Ingrid Solberg?"], (None,))[0].answer


@pytest.mark.parametrize("kwargs, named", [
    ({"index_dir": 123}, "index_dir"),
    ({"corpus_dir": 5}, "corpus_dir"),
    ({"index_dir": ""}, "index_dir"),
    ({"settings": "fast"}, "settings"),
])
def test_constructor_arguments_of_the_wrong_kind_are_named(kwargs, named):
    """QA(index_dir=123) was a TypeError from pathlib, QA(settings="fast") an
    AttributeError ('str' object has no attribute 'serving'), before any model."""
    from fakes import FakeEmbedder, FakeReader
    from qa.pipeline import QA

    with pytest.raises(errors.ArgumentError, match=named):
        QA(embedder=FakeEmbedder(), reader=FakeReader(), **kwargs)
