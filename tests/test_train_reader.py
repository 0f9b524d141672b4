"""Training-data preparation for the reader (no model, no training run)."""

from __future__ import annotations

import numpy as np
from transformers import AutoTokenizer

from qa.training.calibration_fit import sweep
from qa.embedding import packaged_minilm_path
from qa.evaluation.squad import SquadExample
from qa.training.train_reader import featurize, rebalance

PARAS = [
    "Ada Lovelace wrote the first program for the Analytical Engine.",
    "Charles Babbage designed the Analytical Engine in London.",
    "The engine was never finished in Babbage's lifetime.",
]


def _examples() -> list[SquadExample]:
    return [
        SquadExample("a1", "Engine", PARAS[0], "Who wrote the first program?", ("Ada Lovelace",), (0,)),
        SquadExample("a2", "Engine", PARAS[1], "Who designed the engine?", ("Charles Babbage", "Babbage"), (0, 8)),
        SquadExample("a3", "Engine", PARAS[1], "Where was it designed?", ("London",), (PARAS[1].index("London"),)),
        SquadExample("u1", "Engine", PARAS[2], "Who finished the engine?", ()),
    ]


def test_rebalance_counts_and_hard_negatives():
    out = rebalance(_examples(), unanswerable_repeat=3, negatives=1.0, answerable_fraction=1.0, seed=0)
    assert sum(e.id == "u1" for e in out) == 3
    negs = [e for e in out if e.id.endswith("-neg")]
    # every answerable question has a paragraph without its answer ("Babbage" is in
    # two paragraphs, so a2's negative can only be the first one)
    assert len(negs) == 3
    for n in negs:
        assert n.is_impossible
        original = next(e for e in _examples() if e.id + "-neg" == n.id)
        assert n.context != original.context and n.question == original.question
        assert not any(a.lower() in n.context.lower() for a in original.answers)
    assert next(n for n in negs if n.id == "a2-neg").context == PARAS[0]


def test_rebalance_is_deterministic_and_keeps_a_share():
    a = rebalance(_examples(), 1, 0.0, answerable_fraction=2 / 3, seed=7)
    b = rebalance(_examples(), 1, 0.0, answerable_fraction=2 / 3, seed=7)
    assert [e.id for e in a] == [e.id for e in b]
    assert sum(not e.is_impossible for e in a) == 2 and sum(e.is_impossible for e in a) == 1


def test_featurize_labels_answer_tokens_and_null():
    tok = AutoTokenizer.from_pretrained(packaged_minilm_path())
    feats = featurize(_examples(), tok, max_length=64, stride=16)
    assert len(feats) == 4
    ids, _, s, e = feats[2]
    assert tok.decode(ids[s:e + 1]).lower() == "london"
    assert feats[3][2:] == (0, 0)  # unanswerable: [CLS]


def test_sweep_scores_answers_and_abstentions():
    probs = np.array([0.9, 0.2, 0.8, 0.1])
    f1 = np.array([1.0, 1.0, 0.0, 0.0])
    impossible = np.array([False, False, True, True])
    lo, hi = sweep(probs, f1, impossible, [0.0, 0.5])
    assert lo["f1"] == 50.0 and lo["no_answer_accuracy"] == 0.0
    assert hi["f1"] == 50.0 and hi["f1_answerable"] == 50.0 and hi["no_answer_accuracy"] == 50.0
