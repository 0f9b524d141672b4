"""Candidate-based hybrid fusion (qa/fusion.py) against all-chunk fusion."""

from __future__ import annotations

import numpy as np

from qa.store.backends import Bm25Index, FaissFlatIndex
from qa.fusion import DenseStats, candidate_hybrid, fuse, union_candidates
from qa.store.backends import FaissHnswIndex

WORDS = "army river king oxygen steam engine force doctor rain forest harvard luther yuan packet sky".split()


def _corpus(n=120, dim=24, seed=5):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 8)) for _ in range(n)]
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = (np.arange(n) * 7 + 3).astype(np.int64)
    return ids, texts, vecs


def _all_chunk(ids, vecs, lexical, qvecs, queries, k, wd=0.65, wb=0.35):
    def z(x):
        m, s = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
        return np.where(s > 1e-9, (x - m) / np.maximum(s, 1e-9), 0.0)

    lex = lexical.scores(queries)  # columns in lexical.ids() order == ids here
    fused = wd * z(qvecs @ vecs.T) + wb * z(lex)
    order = np.argsort(-fused, axis=1, kind="stable")[:, :k]
    return ids[order]


def test_union_and_fuse_pure():
    cand = union_candidates(np.array([[5, 3, -1]]), np.array([[3, 9, -1]]))
    assert cand.tolist() == [[3, 5, 9]]
    s, i = fuse(np.array([[3, 5, 9, -1]]), np.array([[0.9, 0.1, 0.5, 0.0]]), np.array([[0.0, 2.0, 1.0, 0.0]]),
                (np.array([0.5]), np.array([0.2])), (np.array([1.0]), np.array([1.0])), 0.5, 0.5, 5)
    assert i.tolist() == [[3, 9, 5, -1, -1]]  # fused 0.5, 0, -0.5 and np.isneginf(s[0, 3:]).all()


def test_equals_all_chunk_fusion_when_candidates_cover_everything():
    ids, texts, vecs = _corpus()
    vectors = FaissFlatIndex(vecs.shape[1])
    vectors.add(ids, vecs)
    lexical = Bm25Index.build(ids, texts)
    queries = ["army river", "oxygen steam engine", "doctor who", "zzz"]
    rng = np.random.default_rng(1)
    qvecs = rng.standard_normal((4, vecs.shape[1])).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    want = _all_chunk(ids, vecs, lexical, qvecs, queries, 10)
    _, got = candidate_hybrid(vectors, lexical, qvecs, queries, 10, candidates=len(ids),
                              dense_stats=DenseStats.from_index(vectors, size=len(ids)))
    assert (got == want).mean() > 0.97  # float ties aside


def test_small_candidate_lists_keep_most_of_the_top_k():
    ids, texts, vecs = _corpus(n=400)
    vectors = FaissHnswIndex(vecs.shape[1])
    vectors.add(ids, vecs)
    lexical = Bm25Index.build(ids, texts)
    queries = [" ".join(q) for q in np.random.default_rng(2).choice(WORDS, (20, 3))]
    qvecs = vecs[:20] + 0.1
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    want = _all_chunk(ids, vecs, lexical, qvecs, queries, 5)
    _, got = candidate_hybrid(vectors, lexical, qvecs, queries, 5, candidates=50)
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got.tolist(), want.tolist())])
    assert overlap >= 0.9


def test_one_fetch_of_stored_vectors_per_batch_of_questions():
    """A remote store (Milvus) pays a round trip per ``get``: one per batch, not one per question."""
    ids, texts, vecs = _corpus(n=200)
    vectors = FaissFlatIndex(vecs.shape[1])
    vectors.add(ids, vecs)
    calls = []

    class Counting:
        def __getattr__(self, name):
            return getattr(vectors, name)

        def get(self, some):
            calls.append(len(some))
            return vectors.get(some)

    lexical = Bm25Index.build(ids, texts)
    queries = [" ".join(WORDS[i:i + 3]) for i in range(12)]
    rng = np.random.default_rng(2)
    qvecs = rng.standard_normal((len(queries), vecs.shape[1])).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    stats = DenseStats.from_index(vectors, size=200)
    want = candidate_hybrid(vectors, lexical, qvecs, queries, 5, candidates=20, dense_stats=stats)
    got = candidate_hybrid(Counting(), lexical, qvecs, queries, 5, candidates=20, dense_stats=stats)
    assert len(calls) == 1
    assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])
