"""Choosing the answer across passages, on hand-made spans (no model)."""

from __future__ import annotations

import math

import pytest

from qa.reader import Calibration, ChoiceModel, ReadResult, Span, candidate_features, choose, rank_candidates
from qa.reader.calibration import FEATURES, OPEN_FEATURES, READER_FEATURES, choose_best

CONTEXTS = ["Ann Lee founded the mill in 1911.", "The mill was founded by Bo Ek, say some.",
            "Ann Lee also ran the bakery."]


def span_of(ctx: int, text: str, score: float, null: float) -> Span:
    i = CONTEXTS[ctx].index(text)
    return Span(i, i + len(text), score, null, ctx)


def model(features, coef, intercept=0.0, answer=(1.0, 0.0)) -> ChoiceModel:
    n = len(features)
    return ChoiceModel(tuple(features), (0.0,) * n, (1.0,) * n, tuple(coef), intercept, *answer)


# Passage 1 (rank 1, low retrieval score) has the larger raw margin; passage 0 is
# retrieved first and "Ann Lee" is said by two passages.
SPANS = [span_of(1, "Bo Ek", 6.0, 1.0), span_of(0, "Ann Lee", 5.0, 1.5), span_of(2, "Ann Lee", 3.0, 0.0)]
RESULT = ReadResult(SPANS, 0.0)
RETRIEVAL = [2.0, -0.5, 0.3]


def test_features_of_hand_made_spans():
    feats = candidate_features(RESULT, CONTEXTS, RETRIEVAL)
    bo, ann0, ann2 = feats
    assert bo["margin"] == 5.0 and ann0["margin"] == 3.5 and ann2["margin"] == 3.0
    assert bo["gap"] == 0.0 and ann0["gap"] == 1.5
    assert bo["null"] == 1.0
    assert bo["span_rank"] == 0.0 and ann2["span_rank"] == pytest.approx(math.log(3))
    assert bo["agree"] == 0.0 and ann0["agree"] == pytest.approx(math.log(2))  # said twice
    assert ann0["log_words"] == pytest.approx(math.log(3))  # "ann lee": 2 words
    assert ann0["retrieval"] == 2.0 and ann0["retrieval_gap"] == 0.0 and bo["retrieval_gap"] == 2.5
    assert ann0["passage_rank"] == 0.0 and bo["passage_rank"] == pytest.approx(math.log(2))
    assert set(bo) == set(FEATURES)


def test_without_a_choice_model_the_best_raw_margin_wins():
    cal = Calibration(a=1.0, b=-4.0, threshold=0.5)
    best, p = choose(RESULT, cal, 0.0, CONTEXTS, RETRIEVAL)
    assert best is SPANS[0]
    assert p == pytest.approx(1 / (1 + math.exp(-(5.0 - 4.0))))
    assert choose(RESULT, cal, 0.0) == (best, p)  # the old call is the same choice


def test_retrieval_evidence_can_overrule_a_larger_margin():
    # Weighs the margin a little, retrieval and agreement a lot.
    m = model(OPEN_FEATURES, [0.2 if f == "margin" else 2.0 if f in ("retrieval", "agree") else 0.0
                              for f in OPEN_FEATURES], intercept=-3.0)
    cal = Calibration(a=1.0, b=0.0, threshold=0.5, choice={"open": m})
    ranked = rank_candidates(RESULT, cal, CONTEXTS, RETRIEVAL)
    assert [CONTEXTS[c.span.passage][c.span.start:c.span.end] for c in ranked] == ["Ann Lee", "Ann Lee", "Bo Ek"]
    assert ranked[0].span.passage == 0
    assert ranked[0].probability > ranked[1].probability > ranked[2].probability
    best, p = choose(RESULT, cal, 0.0, CONTEXTS, RETRIEVAL)
    assert best is SPANS[1] and p == pytest.approx(ranked[0].probability)


def test_the_reader_model_is_used_for_a_passage_given_alone():
    spans = [span_of(0, "Ann Lee", 4.0, 0.0), span_of(0, "1911", 5.0, 0.0)]
    res = ReadResult(spans, 0.0)
    # Prefers longer answers: "Ann Lee" (2 words) over "1911" despite the margin.
    m = model(READER_FEATURES, [0.1 if f == "margin" else 5.0 if f == "log_words" else 0.0 for f in READER_FEATURES])
    cal = Calibration(choice={"reader": m})
    best, _ = choose(res, cal, 0.0, contexts=[CONTEXTS[0]])
    assert best is spans[0]
    # Without the passage text the plain margin decides.
    assert choose(res, cal, 0.0)[0] is spans[1]
    # An open model is not applied when no retrieval scores are given.
    cal_open = Calibration(choice={"open": model(OPEN_FEATURES, [1.0] * len(OPEN_FEATURES))})
    assert choose(res, cal_open, 0.0, contexts=[CONTEXTS[0]])[0] is spans[1]


def test_the_winner_goes_through_the_platt_step_and_the_threshold():
    m = model(OPEN_FEATURES, [1.0 if f == "margin" else 0.0 for f in OPEN_FEATURES], intercept=-4.0,
              answer=(0.5, -1.0))
    cal = Calibration(choice={"open": m})
    cand, p = choose_best(RESULT, cal, CONTEXTS, RETRIEVAL)
    raw = 1 / (1 + math.exp(-(5.0 - 4.0)))
    logit = math.log(raw / (1 - raw))
    assert cand.probability == pytest.approx(raw)
    assert p == pytest.approx(1 / (1 + math.exp(-(0.5 * logit - 1.0))))
    assert choose(RESULT, cal, p + 1e-6, CONTEXTS, RETRIEVAL)[0] is None
    assert choose(RESULT, cal, p, CONTEXTS, RETRIEVAL)[0] is SPANS[0]


def test_no_spans_is_no_answer():
    cal = Calibration(choice={"open": model(OPEN_FEATURES, [0.0] * len(OPEN_FEATURES))})
    assert choose(ReadResult([], math.inf), cal, 0.0, [], []) == (None, 0.0)
    assert rank_candidates(ReadResult([], math.inf), cal, [], []) == []


def test_the_pipeline_answers_from_the_passage_the_choice_model_prefers(tiny_docs, tmp_path, fake_models):
    """End to end over the fakes: FakeReader gives the first passage the larger
    margin; a choice model that prefers later passages changes the cited answer."""
    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    question = "Which station and harbour and mill?"
    plain = q.ask(question, top_k=3, min_score=0.0)
    assert plain.found
    first_doc = plain.citations[0].doc_id
    m = model(OPEN_FEATURES, [5.0 if f == "passage_rank" else 0.0 for f in OPEN_FEATURES])
    q.reader.calibration = Calibration(a=1.0, b=0.0, threshold=0.5, choice={"open": m})
    chosen = q.ask(question, top_k=3, min_score=0.0)
    assert chosen.found and chosen.citations[0].doc_id != first_doc
    c = chosen.citations[0]
    doc = {d.id: d for d in tiny_docs}[c.doc_id]
    assert doc.text[c.answer_start:c.answer_end] == chosen.answer
    assert chosen.best_candidate == chosen.answer and chosen.best_candidate_citation == c
    assert chosen.score == pytest.approx(c.score)


def test_question_coverage_of_the_answer_sentence_by_hand():
    ctx = "Popov led the 58th Army. He was dismissed in July. Gerasimov signed the order."
    j, i = ctx.index("Gerasimov"), ctx.index("July")
    res = ReadResult([Span(j, j + 9, 5.0, 1.0, 0), Span(i, i + 4, 4.0, 1.0, 0)], 0.0)
    q = "Who signed the order dismissing Popov?"  # content words: signe, order, dismi, popov
    signer, month = candidate_features(res, [ctx], None, q)
    assert signer["q_overlap"] == pytest.approx(2 / 4)  # "signed", "order" in its sentence
    assert month["q_overlap"] == pytest.approx(1 / 4)  # "dismissed"
    # with the neighbouring sentence: only "popov" (two sentences away) is missing for
    # the signer; the month's neighbours hold all four words
    assert signer["q_missing"] == pytest.approx(math.log1p(1)) and month["q_missing"] == 0.0
    far = candidate_features(res, [ctx], None, "Who signed the treaty in Minsk?")[0]
    assert far["q_missing"] == pytest.approx(math.log1p(2))  # "treat", "minsk"
    # without the question the features are 0 (and the other features unchanged)
    plain = candidate_features(res, [ctx], None)[0]
    assert plain["q_overlap"] == plain["q_missing"] == 0.0 and plain["margin"] == signer["margin"]
