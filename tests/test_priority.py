"""Questions first: an upload's embedding steps aside between its batches while a question is answered."""

from __future__ import annotations

import threading
import time

import numpy as np

from qa.embedding import Embedder
from qa.priority import Foreground
from tests.fakes import FakeReader, make_fake_qa


class _TimedModel:
    """Stands in for the embedding model: 20 ms per batch, and it records when each batch ran."""

    def __init__(self):
        self.starts: list[float] = []
        self.sizes: list[int] = []

    def get_embedding_dimension(self):
        return 4

    def encode(self, texts, **kw):
        self.starts.append(time.perf_counter())
        self.sizes.append(len(texts))
        time.sleep(0.02)
        return np.ones((len(texts), 4), dtype=np.float32)


def _hold_question(fg: Foreground, seconds: float, window: dict) -> threading.Thread:
    def run():
        with fg.question():
            window["start"] = time.perf_counter()
            time.sleep(seconds)
            window["end"] = time.perf_counter()

    t = threading.Thread(target=run)
    t.start()
    while "start" not in window:
        time.sleep(0.001)
    return t


def test_bulk_work_waits_for_the_question_in_flight():
    fg = Foreground(max_wait_s=5.0, grace_s=0.0)
    window: dict = {}
    t = _hold_question(fg, 0.3, window)
    waited = fg.yield_to_questions()
    t.join()
    assert fg.active == 0
    assert waited >= 0.25 and time.perf_counter() >= window["end"]


def test_a_stream_of_questions_cannot_stop_bulk_work():
    fg = Foreground(max_wait_s=0.1)
    window: dict = {}
    t = _hold_question(fg, 1.0, window)
    t0 = time.perf_counter()
    fg.yield_to_questions()
    assert time.perf_counter() - t0 < 0.5  # gave up after max_wait_s, long before the question ended
    t.join()


def test_bulk_work_also_waits_out_the_grace_after_an_answer():
    """Chat clients ask again milliseconds after an answer: the upload must not slip a batch in between."""
    fg = Foreground(max_wait_s=5.0, grace_s=0.3)
    with fg.question():
        pass
    assert fg.busy()
    waited = fg.yield_to_questions()
    assert 0.2 <= waited < 1.0 and not fg.busy()
    assert Foreground(max_wait_s=5.0, grace_s=0.0).yield_to_questions() < 0.05


def test_while_questions_are_about_the_upload_takes_small_steps(tmp_path):
    fg = Foreground(max_wait_s=0.01, grace_s=0.0)  # gives up waiting at once: bulk work runs beside the question
    emb = Embedder(model_dir=tmp_path, batch_size=16, bf16=False, foreground=fg, busy_batch_size=4)
    emb._model = model = _TimedModel()
    texts = [f"chunk {i}" for i in range(64)]
    window: dict = {}
    held = _hold_question(fg, 2.0, window)  # another thread's question, in flight throughout
    emb.run(texts)
    assert set(model.sizes) == {4}
    model.sizes.clear()
    with fg.question():  # a large ask_batch's own embedding is the foreground: full batches, no waiting
        emb.run(texts)
    assert model.sizes == [16, 16, 16, 16]
    held.join()
    model.sizes.clear()
    emb.run(texts)  # no question about: full batches
    assert model.sizes == [16, 16, 16, 16]


def test_inside_a_question_nothing_waits_for_itself():
    fg = Foreground(max_wait_s=5.0)
    with fg.question():
        t0 = time.perf_counter()
        assert fg.yield_to_questions() == 0.0
        assert time.perf_counter() - t0 < 0.05


def test_an_uploads_embedding_runs_no_batch_while_a_question_is_answered(tmp_path):
    fg = Foreground(max_wait_s=5.0)
    emb = Embedder(model_dir=tmp_path, batch_size=8, bf16=False, foreground=fg)
    emb._model = model = _TimedModel()
    bulk_texts = [f"chunk {i}" for i in range(8 * 30)]  # 30 batches, ~0.6 s alone
    done: dict = {}
    bulk = threading.Thread(target=lambda: done.setdefault("v", emb.run(bulk_texts)))
    bulk.start()
    time.sleep(0.1)
    window: dict = {}
    _hold_question(fg, 0.4, window).join()
    bulk.join()
    assert done["v"].shape == (len(bulk_texts), 4)
    during = [s for s in model.starts if window["start"] + 0.025 < s < window["end"]]
    assert not during, f"{len(during)} upload batches started while the question was being answered"
    assert any(s > window["end"] for s in model.starts), "the upload should go on after the question"


def test_qa_marks_its_questions_and_shares_that_with_its_embedder(tmp_path):
    seen = []

    class Recording(FakeReader):
        def run(self, questions, passages):
            seen.append(qa.foreground.active)
            return super().run(questions, passages)

    qa = make_fake_qa(index_dir=tmp_path / "index", corpus_dir=None, reader=Recording())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The ferry to Alpha Station leaves at noon.\n", encoding="utf-8")
    qa.add_paths([docs / "a.txt"])
    qa.ask("When does the ferry leave?")
    qa.ask_batch(["Where does the ferry go?"])
    assert seen == [1, 1] and qa.foreground.active == 0
    # a real embedder built by QA, or one passed in without its own, yields to this QA's questions
    assert make_fake_qa(index_dir=tmp_path / "i2", corpus_dir=None, embedder=None).embedder.foreground is not None
    shared = Embedder(model_dir=tmp_path)
    other = make_fake_qa(index_dir=tmp_path / "i3", corpus_dir=None, embedder=shared)
    assert shared.foreground is other.foreground
