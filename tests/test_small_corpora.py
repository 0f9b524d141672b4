"""Small made corpora with the real models (slow): boilerplate that repeats on every
page must not crowd out the one short document that answers; a right answer on a
one-document corpus clears the default threshold; off-topic questions are
declined at every corpus size."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa.config import RetrievalConfig
from qa.api import QA
from qa.types import Document

pytestmark = pytest.mark.slow

PAGE = ("Minutes of the Finance Committee of the Riverside Town Council. The committee reviewed the annual "
        "budget, the funding requests of every department and the spending of the previous year. Members "
        "present: the chair, the treasurer and five councillors. The minutes were approved. Page {n} of 8.")
NOTE = "The library on Harbour Street gets 4.2 million euros from the town; Lena Varga designed it."
ASK = "What amount did the committee approve for the library?"

OFF_TOPIC = [
    "What is the boiling point of mercury?",
    "Who won the 1998 FIFA World Cup?",
    "What is the capital of Australia?",
    "How many moons does Jupiter have?",
    "Who painted the Mona Lisa?",
    "What is the chemical formula of table salt?",
    "When did the Berlin Wall fall?",
    "Which language has the most native speakers?",
    "How tall is Mount Kilimanjaro?",
    "Who wrote Pride and Prejudice?",
]


def boilerplate_docs() -> list[Document]:
    """A PDF-like report (one document per page, as its pages are chunked apart) whose eight
    pages repeat the same committee boilerplate, and one short note that holds the answer."""
    pages = [Document(id=f"minutes.pdf#page={n}", text=PAGE.format(n=n), title="Minutes") for n in range(1, 9)]
    return pages + [Document(id="library.html", text=NOTE, title="Library news")]


def qa_over(real_qa, tmp_path, docs, name: str, **retrieval) -> QA:
    settings = replace(real_qa.settings, retrieval=replace(RetrievalConfig(), **retrieval))
    q = QA(index_dir=tmp_path / name, corpus_dir=None, settings=settings, embedder=real_qa.embedder,
           reader=real_qa.reader)
    q.add_documents(docs)
    return q


def test_boilerplate_does_not_crowd_out_the_short_document(real_qa, tmp_path):
    # Before near-duplicate grouping: five copies of the boilerplate fill the
    # five passages read, and the note is never read.
    old = qa_over(real_qa, tmp_path, boilerplate_docs(), "old", duplicate_cosine=None)
    assert all(c.doc_id.startswith("minutes.pdf") for c in old.ask(ASK, min_score=0.0).citations)
    q = qa_over(real_qa, tmp_path, boilerplate_docs(), "new")
    a = q.ask(ASK, min_score=0.0)
    assert "library.html" in [c.doc_id for c in a.citations]  # the note is read
    assert sum(c.doc_id.startswith("minutes.pdf") for c in a.citations) == 1  # the copies take one slot
    # (the reader still prefers a span of the boilerplate for this wording: docs/calibration.md)
    right = q.ask("How much does the library get from the town?")
    assert right.found and "4.2 million euros" in right.answer and right.citations[0].doc_id == "library.html"


def test_a_right_answer_on_one_document_clears_the_default_threshold(real_qa):
    # The example: exactly right, and shown only as a guess (0.08) before.
    a = real_qa.ask("What weapon killed Tsokov?")
    assert a.found and "Storm Shadow" in a.answer, (a.answer, a.score, a.best_candidate)


def test_off_topic_questions_are_declined_at_every_corpus_size(real_qa, tmp_path):
    one_short = qa_over(real_qa, tmp_path, [Document(id="library.html", text=NOTE, title="Library news")], "one")
    few = qa_over(real_qa, tmp_path, boilerplate_docs(), "few")
    seed_docs = list(real_qa.store.documents.values())
    many = qa_over(real_qa, tmp_path, seed_docs + boilerplate_docs(), "many")
    for q in (one_short, few, real_qa, many):
        answers = q.ask_batch(OFF_TOPIC)
        given = [(a.question, a.answer, round(a.score, 3)) for a in answers if a.found]
        assert not given, (len(q.store), given)
