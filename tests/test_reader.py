"""Span decoding in plain NumPy with hand-made logits (no model)."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from qa.reader import Calibration, ReadResult, Span, best_spans, choose, decode_window, dedupe_spans

NEG = -10.0


def window(n_question: int, n_context: int):
    """[CLS] q.. [SEP] c.. [SEP] as a context mask."""
    seq = [None] + [0] * n_question + [None] + [1] * n_context + [None]
    return np.asarray([s == 1 for s in seq])


def logits(mask, peaks: dict[int, float]):
    x = np.full(len(mask), NEG)
    for i, v in peaks.items():
        x[i] = v
    return x


def test_best_span_is_the_argmax_pair():
    mask = window(3, 10)  # context tokens 5..14
    s = logits(mask, {7: 5.0, 9: 1.0})
    e = logits(mask, {8: 4.0, 12: 2.0})
    out = best_spans(s, e, mask, max_answer_tokens=30, n_best=5)
    assert out[0] == (7, 8, 9.0)
    assert [sc for _, _, sc in out] == sorted((sc for _, _, sc in out), reverse=True)


def test_end_never_before_start():
    mask = window(2, 8)
    s = logits(mask, {9: 9.0})  # strong start late
    e = logits(mask, {5: 9.0, 10: 1.0})  # strong end early
    out = best_spans(s, e, mask, max_answer_tokens=30, n_best=20)
    assert out and all(j >= i for i, j, _ in out)
    assert out[0][:2] == (9, 10)


def test_max_answer_length():
    mask = window(2, 40)
    s = logits(mask, {4: 9.0, 30: 1.0})
    e = logits(mask, {40: 9.0, 31: 1.0})
    for max_len in (1, 3, 10, 36, 37):
        out = best_spans(s, e, mask, max_answer_tokens=max_len, n_best=20)
        assert all(j - i < max_len for i, j, _ in out)
    assert best_spans(s, e, mask, 37, 20)[0][:2] == (4, 40)  # 37 tokens: allowed
    assert best_spans(s, e, mask, 36, 20)[0][:2] != (4, 40)


def test_question_and_special_tokens_never_selected():
    mask = window(5, 6)
    s = np.full(len(mask), NEG)
    e = np.full(len(mask), NEG)
    s[:7] = 50.0  # huge logits on [CLS], the question and [SEP]
    e[:7] = 50.0
    s[-1] = e[-1] = 50.0  # and the final [SEP]
    out = best_spans(s, e, mask, 30, 20)
    assert out
    ctx = set(np.flatnonzero(mask))
    assert all(i in ctx and j in ctx for i, j, _ in out)


def test_no_context_no_spans():
    mask = np.zeros(6, dtype=bool)
    assert best_spans(np.zeros(6), np.zeros(6), mask, 30, 20) == []


def test_randomised_constraints():
    rng = np.random.default_rng(7)
    for _ in range(200):
        nq, nc = int(rng.integers(1, 10)), int(rng.integers(1, 60))
        mask = window(nq, nc)
        s, e = rng.normal(size=len(mask)), rng.normal(size=len(mask))
        max_len, n_best = int(rng.integers(1, 20)), int(rng.integers(1, 25))
        out = best_spans(s, e, mask, max_len, n_best)
        assert len(out) <= n_best
        for i, j, sc in out:
            assert mask[i] and mask[j] and i <= j < i + max_len
            assert sc == pytest.approx(s[i] + e[j])
        scores = [sc for *_, sc in out]
        assert scores == sorted(scores, reverse=True)
        # Candidates are pairs of the n_best best starts and ends: the first span
        # is the best valid such pair (brute force), and one exists iff out is non-empty.
        ctx = np.flatnonzero(mask)
        top_s = ctx[np.argsort(-s[ctx], kind="stable")][:n_best]
        top_e = ctx[np.argsort(-e[ctx], kind="stable")][:n_best]
        valid = [(s[i] + e[j], i, j) for i, j in itertools.product(top_s, top_e) if i <= j < i + max_len]
        assert bool(valid) == bool(out)
        if valid:
            assert out[0][2] == pytest.approx(max(valid)[0])


def test_decode_window_maps_offsets():
    context = "General Ivan Popov commanded the 58th Combined Arms Army."
    # Hand-made tokens over the context (question tokens have (0, 0) like in HF).
    toks = [(0, 7), (8, 12), (13, 18), (19, 28), (29, 32), (33, 37), (38, 46), (47, 51), (52, 56), (56, 57)]
    nq = 3
    offsets = np.asarray([(0, 0)] * (1 + nq + 1) + toks + [(0, 0)])
    mask = window(nq, len(toks))
    first = 1 + nq + 1
    s = logits(mask, {0: 2.0, first + 5: 8.0})  # "58th"
    e = logits(mask, {0: 1.5, first + 8: 7.0})  # "Army"
    null, spans = decode_window(s, e, offsets, mask, 30, 5)
    assert null == pytest.approx(3.5)
    a0, a1, sc = spans[0]
    assert context[a0:a1] == "58th Combined Arms Army"
    assert sc == pytest.approx(15.0)
    for x0, x1, _ in spans:
        assert 0 <= x0 < x1 <= len(context)


def sp(start, end, score, passage=0, null=0.0):
    return Span(start=start, end=end, score=score, null_score=null, passage=passage)


def test_dedupe_keeps_best_of_overlapping():
    spans = [sp(10, 20, 3.0), sp(12, 18, 5.0), sp(19, 25, 4.0), sp(30, 35, 1.0), sp(12, 18, 2.0, passage=1)]
    kept = dedupe_spans(spans)
    assert kept == [sp(12, 18, 5.0), sp(19, 25, 4.0), sp(12, 18, 2.0, passage=1), sp(30, 35, 1.0)]
    # Touching is not overlapping.
    assert len(dedupe_spans([sp(0, 5, 1.0), sp(5, 9, 2.0)])) == 2
    # Ranked by margin (score - null), not raw score.
    a, b = sp(0, 5, 10.0, null=9.0), sp(3, 8, 6.0, null=0.0)
    assert dedupe_spans([a, b]) == [b]


def test_calibration_probability_is_monotone_and_bounded():
    for cal in (Calibration(), Calibration(a=0.7, b=-1.3), Calibration(a=3.0, b=2.0)):
        xs = np.linspace(-2000, 2000, 4001)
        ps = [cal.probability(float(x)) for x in xs]
        assert all(0.0 <= p <= 1.0 for p in ps)
        assert all(p2 >= p1 for p1, p2 in zip(ps, ps[1:]))
        assert ps[0] == pytest.approx(0.0) and ps[-1] == pytest.approx(1.0)
    assert Calibration(a=2.0, b=-1.0).probability(0.5) == pytest.approx(0.5)
    assert Calibration().probability(math.log(3)) == pytest.approx(0.75)


def test_calibration_load(tmp_path):
    assert Calibration.load(tmp_path) == Calibration()
    (tmp_path / "calibration.json").write_text('{"a": 0.5, "b": -2.0, "threshold": 0.3, "extra": 1}')
    assert Calibration.load(tmp_path) == Calibration(a=0.5, b=-2.0, threshold=0.3)


def test_choose_answers_or_abstains():
    cal = Calibration(a=1.0, b=0.0)
    assert choose(ReadResult([], math.inf), cal, 0.5) == (None, 0.0)
    strong, weak = sp(0, 4, 5.0, null=1.0), sp(0, 4, 1.0, null=2.0)
    best, p = choose(ReadResult([strong], 1.0), cal, 0.5)
    assert best == strong and p == pytest.approx(1 / (1 + math.exp(-4)))
    best, p = choose(ReadResult([weak], 2.0), cal, 0.5)
    assert best is None and p == pytest.approx(1 / (1 + math.exp(1)))
    # The threshold decides: same span, stricter threshold.
    assert choose(ReadResult([strong], 1.0), cal, 0.99)[0] is None


def test_dedupe_random_no_overlaps_left():
    rng = random.Random(3)
    for _ in range(100):
        spans = []
        for _ in range(rng.randint(0, 15)):
            a = rng.randint(0, 50)
            spans.append(sp(a, a + rng.randint(1, 8), rng.uniform(-5, 5), passage=rng.randint(0, 2)))
        kept = dedupe_spans(spans)
        for x, y in itertools.combinations(kept, 2):
            assert not (x.passage == y.passage and x.start < y.end and y.start < x.end)
        # Every dropped span overlaps a kept one of higher or equal margin.
        for s in spans:
            if s not in kept:
                assert any(k.passage == s.passage and k.start < s.end and s.start < k.end and k.margin >= s.margin
                           for k in kept)


def test_a_reader_without_calibration_is_refused(tmp_path):
    """No silent fallback to uncalibrated scores: the threshold would mean nothing."""
    import shutil

    from qa.config import ReaderConfig
    from qa.errors import ModelError
    from qa.reader import SpanReader

    src = ReaderConfig().path
    for f in src.iterdir():
        if f.name != "calibration.json" and f.is_file():
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(ModelError, match="calibrate_reader --model"):
        SpanReader(ReaderConfig(path=tmp_path)).warm_up()
    SpanReader(ReaderConfig(path=tmp_path), uncalibrated_ok=True).warm_up()  # for calibrating it


def test_a_span_from_one_sentence_into_the_next_crosses():
    from qa.reader.model import crosses_sentence, sentence_starts

    text = "The door is blue. Dr. Smith paid 3.5 million for the U.S. Army house. It is green."
    starts = sentence_starts(text)
    assert [text[s:s + 3] for s in starts] == ["Dr.", "It "]

    def span(a: str) -> tuple[int, int]:
        i = text.index(a)
        return i, i + len(a)

    for inside in ("blue", "The door is blue.", "Dr. Smith", "3.5 million", "U.S. Army house.", "It is green."):
        assert not crosses_sentence(starts, *span(inside)), inside
    for across in ("blue. Dr", "blue. Dr. Smith paid 3.5 million", "house. It", "Smith paid 3.5 million for the U.S. Army house. It"):
        assert crosses_sentence(starts, *span(across)), across


@pytest.mark.parametrize("text, want", [
    ("# The Quince Garden", "The Quince Garden"),      # a Markdown heading's marker
    ("## **Oslo**", "Oslo"),                             # and emphasis inside it
    ("> quoted words", "quoted words"),                  # a block quote
    ("- Lindby harbour", "Lindby harbour"),              # a list bullet
    ("| 112 |", "112"),                                  # a table cell
    ("`qa index`", "qa index"),                          # inline code
    ("C#", "C#"), ("#1 hit", "#1 hit"), ("3 - 2", "3 - 2"), ("snake_case", "snake_case"),
    ("**", "**"),                                        # nothing but markup: left as it is
])
def test_trim_markup_keeps_the_words_not_the_markup(text, want):
    """A .md keeps its markup in the stored text (offsets are the file's), so a span
    could start with '# ' or be wrapped in '**': a guess read '# The Quince Garden'."""
    from qa.reader.decoding import trim_markup

    start, end = trim_markup(text, 0, len(text))
    assert text[start:end] == want
    s, e = trim_markup("x " + text + " y", 2, 2 + len(text))  # offsets inside a longer passage
    assert ("x " + text + " y")[s:e] == want


@pytest.mark.slow
def test_real_reader_answers_without_markdown_markup(real_qa):
    text = ("# The Quince Garden\n\nThe Quince Garden was planted in 1911 by Hilda Brandt.\n\n"
            "## Keepers\n\nThe garden's keeper is **Tomas Lund**, who took over in 1990.")
    [result] = real_qa.reader.run(["Who is the garden's keeper?", "What was planted in 1911?"][:1], [[text]])
    for span in result.spans:
        answer = text[span.start:span.end]
        assert not answer.startswith(("#", "*", ">")) and not answer.endswith("*"), answer
    assert text[result.spans[0].start:result.spans[0].end] == "Tomas Lund"
