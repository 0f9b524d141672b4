"""Retrieval: reciprocal rank fusion by hand, and dense/BM25/hybrid plumbing on a
tiny store (fake embedder: plumbing only, no quality claims)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.config import RetrievalConfig
from qa.retrieval import (Hit, Retriever, bm25_scores, bm25_search, dense_search, rrf,
                          top_hits, zscore)

from conftest import FakeEmbedder, build_store


def hits(*rows):
    return [Hit(r, 100.0 - i) for i, r in enumerate(rows)]


def test_rrf_single_list_keeps_order():
    fused = rrf([hits(7, 3, 5)], [1.0], k=60)
    assert [h.row for h in fused] == [7, 3, 5]
    assert fused[0].score == pytest.approx(1 / 61) and fused[2].score == pytest.approx(1 / 63)


def test_rrf_sums_reciprocal_ranks():
    fused = rrf([hits(1, 2, 3), hits(3, 2, 4)], [1.0, 1.0], k=60)
    scores = {h.row: h.score for h in fused}
    assert scores[1] == pytest.approx(1 / 61)
    assert scores[2] == pytest.approx(2 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[4] == pytest.approx(1 / 63)
    assert [h.row for h in fused] == [3, 2, 1, 4]


def test_rrf_weights_and_ties():
    # Weighting the second list puts its top item first.
    assert rrf([hits(1, 2), hits(2, 1)], [1.0, 3.0], k=60)[0].row == 2
    assert rrf([hits(1, 2), hits(2, 1)], [3.0, 1.0], k=60)[0].row == 1
    # Equal scores: lower row first (deterministic).
    assert [h.row for h in rrf([hits(9), hits(4)], [1.0, 1.0], k=60)] == [4, 9]
    # Zero weight ignores a list's order (but keeps its rows as candidates).
    assert [h.row for h in rrf([hits(1, 2), hits(5, 6)], [1.0, 0.0], k=1)][:2] == [1, 2]


def test_rrf_empty():
    assert rrf([[], []], [1.0, 1.0], k=60) == []
    assert [h.row for h in rrf([[], hits(4)], [1.0, 1.0], k=60)] == [4]


def test_bm25_finds_rare_names(tiny_store):
    [found] = bm25_search(tiny_store, ["Who is Ingrid Solberg?"], 5)
    assert found, "the name is in beta.md"
    assert tiny_store.chunks[found[0].row].doc_id == "beta.md"
    assert "Ingrid Solberg" in tiny_store.chunks[found[0].row].text
    assert all(h.score > 0 for h in found)
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)


def test_bm25_unknown_or_stop_words_find_nothing(tiny_store):
    assert bm25_search(tiny_store, ["xylophone quasar", "the of and"], 5) == [[], []]


def test_bm25_tokenizer_stems():
    from qa.config import BM25Config
    from qa.store.backends.bm25 import tokenize

    [toks] = tokenize(["The harbours were painted"], BM25Config())
    assert "the" not in toks and any(t.startswith("harbour") for t in toks)


def test_bm25_invisible_characters_do_not_split_words():
    """A .txt keeps its zero-width spaces, soft hyphens and joiners (its offsets are
    the file's), so search must read past them: 'Donau\u200bdampf' is the word the
    user types as 'Donaudampf', in the text and in a pasted question alike."""
    from qa.config import BM25Config
    from qa.store.backends.bm25 import Bm25Index, tokenize

    config = BM25Config(stemmer=None, stopwords=None)
    hidden = "Donau\u200bdampf Schiff\u00adfahrt Ge\u2060sell\u200dschaft\ufeff"
    assert tokenize([hidden], config) == tokenize(["Donaudampf Schifffahrt Gesellschaft"], config)
    index = Bm25Index.build(np.array([10, 11]), ["Die Donau\u200bdampf fuhr.", "Ein Zug fuhr."])
    _, rows = index.search(["Donaudampf", "Donau\u200bdampf"], 1)
    assert rows[0].tolist() == [10] and rows[1].tolist() == [10]


def test_dense_search(tiny_store):
    qv = FakeEmbedder().run(["turbine electricity mill", "helicopter supplies ridge"])
    a, b = dense_search(tiny_store, qv, 3)
    assert len(a) == len(b) == 3
    assert tiny_store.chunks[a[0].row].doc_id == "gamma.txt"
    assert tiny_store.chunks[b[0].row].doc_id == "alpha.txt"
    assert a[0].score >= a[1].score >= a[2].score
    # k larger than the store: every chunk once.
    [allhits] = dense_search(tiny_store, qv[:1], 1000)
    assert sorted(h.row for h in allhits) == list(range(len(tiny_store)))


def test_empty_store_searches_return_empty(small_chunker, fake_embedder):
    empty = build_store([], small_chunker, fake_embedder)
    assert dense_search(empty, FakeEmbedder().run(["x"]), 5) == [[]]
    assert bm25_search(empty, ["x"], 5) == [[]]
    for mode in ("dense", "bm25", "hybrid", "rrf"):
        assert Retriever(FakeEmbedder()).run(empty, ["x"], mode=mode) == [[]]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid", "rrf"])
def test_retriever_modes(tiny_store, mode):
    r = Retriever(FakeEmbedder(), RetrievalConfig(mode=mode, top_k=2, candidates=10))
    [found] = r.run(tiny_store, ["Who is the harbour master of Beta Harbour?"])
    assert 1 <= len(found) <= 2
    assert tiny_store.chunks[found[0].row].doc_id == "beta.md"
    assert len({h.row for h in found}) == len(found)


def test_rrf_mode_is_rrf_of_dense_and_bm25(tiny_store):
    cfg = RetrievalConfig(mode="rrf", top_k=4, candidates=20, rrf_k=60, rrf_dense_weight=1.0, rrf_bm25_weight=2.0)
    emb = FakeEmbedder()
    q = ["When was the mill wheel replaced by a turbine?"]
    [got] = Retriever(emb, cfg).run(tiny_store, q)
    dense = dense_search(tiny_store, emb.run(q), 20)[0]
    lexical = bm25_search(tiny_store, q, 20)[0]
    assert got == rrf([dense, lexical], [1.0, 2.0], 60)[:4]
    # Overriding mode and top_k per call.
    [only_bm25] = Retriever(emb, cfg).run(tiny_store, q, top_k=1, mode="bm25")
    assert only_bm25 == lexical[:1]


def test_zscore_and_top_hits_by_hand():
    z = zscore(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert z[0] == pytest.approx([-1.224745, 0.0, 1.224745], abs=1e-5)
    assert (z[1] == 0).all()  # a constant row carries no preference
    got = top_hits(np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]]), 3)
    assert [[h.row for h in hs] for hs in got] == [[1, 3, 2], [0, 1, 2]]  # ties: lower row first
    assert got[0][0].score == pytest.approx(0.9)
    assert [len(hs) for hs in top_hits(np.zeros((2, 2)), 5)] == [2, 2]


def test_hybrid_fuses_z_normalised_scores(tiny_store):
    cfg = RetrievalConfig(mode="hybrid", top_k=len(tiny_store), dense_weight=0.65, bm25_weight=0.35)
    emb = FakeEmbedder()
    q = ["When was the mill wheel replaced by a turbine?", "Who is Ingrid Solberg?"]
    got = Retriever(emb, cfg).run(tiny_store, q)
    dense = emb.run(q) @ tiny_store.chunk_vectors().T
    lexical = np.zeros_like(dense)
    for i, hs in enumerate(bm25_search(tiny_store, q, len(tiny_store))):
        for h in hs:
            lexical[i, h.row] = h.score
    want = 0.65 * zscore(dense) + 0.35 * zscore(lexical)
    for i, hs in enumerate(got):
        assert [h.row for h in hs] == sorted(range(len(tiny_store)), key=lambda r: (-want[i, r], r))
        assert [h.score for h in hs] == pytest.approx(sorted(want[i], reverse=True), abs=1e-5)
    assert bm25_scores(tiny_store, ["xylophone"]).tolist() == [[0.0] * len(tiny_store)]
    # BM25 weight 0: the dense order, whatever BM25 says.
    [only_dense] = Retriever(emb, RetrievalConfig(top_k=3, dense_weight=1.0, bm25_weight=0.0)).run(tiny_store, q[:1])
    assert [h.row for h in only_dense] == [h.row for h in dense_search(tiny_store, emb.run(q[:1]), 3)[0]]


def test_unknown_mode(tiny_store):
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        Retriever(FakeEmbedder()).run(tiny_store, ["q"], mode="magic")
    with pytest.raises(ValueError):
        RetrievalConfig(mode="magic")
    with pytest.raises(ValueError):
        RetrievalConfig(top_k=10, candidates=5)
