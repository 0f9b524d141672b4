"""Hybrid (z-scored dense + BM25) fusion over candidates instead of every chunk.

Today's hybrid mode z-scores the cosine similarity and the BM25 score of every
chunk for every question. With an ANN backend the dense side only yields a
top-C list, so fusion is done over candidates:

1. dense top-C from the vector index (ANN), lexical top-C from BM25;
2. the union of both lists; a lexical-only candidate's cosine is computed
   exactly from its stored vector (``VectorIndex.get``), a dense-only
   candidate's BM25 score is read from the lexical score row (bm25s scores
   every chunk cheaply: it is sparse);
3. z-scores use *full-corpus* statistics: BM25's exact mean/std over all chunks
   (from the same score row) and the dense mean/std estimated on a fixed random
   sample of stored vectors (``DenseStats``; 2,048 vectors give the mean and
   std of the cosine to ~2%), so a candidate's fused score equals its
   all-chunk fused score up to that estimate. The only loss left is a chunk in
   neither top-C list that the all-chunk fusion would have put in the top k.
   ``stats="candidates"`` z-scores over the candidate union instead (no sample;
   measured worse, kept for comparison).

With C >= the number of chunks (and exact statistics) the result equals the
all-chunk fusion; ``tests/test_candidates.py`` holds that invariant and
docs/scale.md the measured agreement on SQuAD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DenseStats:
    """A fixed random sample of stored vectors, to estimate each query's cosine mean/std over the corpus."""

    sample: np.ndarray  # [s, dim] float32

    @classmethod
    def from_index(cls, index, size: int = 2048, seed: int = 0) -> "DenseStats":
        ids = index.ids()
        if len(ids) > size:
            ids = np.random.default_rng(seed).choice(ids, size, replace=False)
        return cls(index.get(np.sort(ids)) if len(ids) else np.zeros((0, index.dim), np.float32))

    def __call__(self, qvecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self.sample) == 0:
            return np.zeros(len(qvecs), np.float32), np.ones(len(qvecs), np.float32)
        s = qvecs @ self.sample.T
        return s.mean(axis=1), s.std(axis=1)


def _z(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    std = np.asarray(std, dtype=np.float32)
    ok = std > 1e-9
    return np.where(ok[:, None], (x - mean[:, None]) / np.where(ok, std, 1.0)[:, None], 0.0).astype(np.float32)


def union_candidates(dense_ids: np.ndarray, lexical_ids: np.ndarray) -> np.ndarray:
    """Row-wise union of two padded (-1) id lists, [nq, <= C_dense + C_lexical], padded with -1."""
    rows = [np.unique(np.concatenate([d[d >= 0], b[b >= 0]])) for d, b in zip(dense_ids, lexical_ids)]
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def fuse(cand_ids: np.ndarray, dense: np.ndarray, lexical: np.ndarray,
         dense_stats: tuple[np.ndarray, np.ndarray], lexical_stats: tuple[np.ndarray, np.ndarray],
         dense_weight: float, bm25_weight: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The pure fusion step: candidates' scores -> top k (scores, ids), best first, padded -inf / -1.

    ``cand_ids`` [nq, C] (-1 = no candidate), ``dense`` / ``lexical`` their raw scores,
    ``*_stats`` (mean [nq], std [nq]) to z-score with. Ties: lower id first.
    """
    fused = dense_weight * _z(dense, *dense_stats) + bm25_weight * _z(lexical, *lexical_stats)
    fused = np.where(cand_ids >= 0, fused, -np.inf)
    nq = len(cand_ids)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    ids = np.full((nq, k), -1, dtype=np.int64)
    for i in range(nq):
        valid = np.flatnonzero(cand_ids[i] >= 0)
        order = valid[np.lexsort((cand_ids[i, valid], -fused[i, valid]))][:k]
        scores[i, : len(order)], ids[i, : len(order)] = fused[i, order], cand_ids[i, order]
    return scores, ids


def candidate_hybrid(vectors, lexical, qvecs: np.ndarray, queries: list[str], k: int, *, candidates: int = 100,
                     dense_weight: float = 0.65, bm25_weight: float = 0.35, dense_stats: DenseStats | None = None,
                     stats: str = "corpus") -> tuple[np.ndarray, np.ndarray]:
    """Hybrid top k through the ``VectorIndex`` / ``LexicalIndex`` interfaces only.

    ``stats="corpus"``: z-score with full-corpus statistics (exact for BM25, a
    ``dense_stats`` sample for cosine; built from ``vectors`` when None);
    ``stats="candidates"``: z-score over the candidate union.
    """
    if stats not in ("corpus", "candidates"):
        raise ValueError(f"stats must be 'corpus' or 'candidates', not {stats!r}")
    qvecs = np.asarray(qvecs, dtype=np.float32).reshape(len(queries), -1)
    c = max(candidates, k)
    _, d_ids = vectors.search(qvecs, c)
    lex_all = lexical.scores(queries)  # [nq, n] in lexical.ids() order
    lex_ids = lexical.ids()
    col_of = np.argsort(lex_ids)
    sorted_ids = lex_ids[col_of]

    def lex_of(ids_row: np.ndarray, qi: int) -> np.ndarray:
        if len(sorted_ids) == 0:
            return np.zeros(len(ids_row), np.float32)
        pos = np.minimum(np.searchsorted(sorted_ids, ids_row), len(sorted_ids) - 1)
        return np.where(sorted_ids[pos] == ids_row, lex_all[qi, col_of[pos]], 0.0)

    # lexical top-C (only chunks with a positive score)
    b_ids = np.full((len(queries), c), -1, dtype=np.int64)
    for qi in range(len(queries)):
        row = lex_all[qi]
        n = min(c, len(row))
        if n:
            top = np.argpartition(-row, n - 1)[:n] if n < len(row) else np.arange(len(row))
            top = top[row[top] > 0]
            b_ids[qi, : len(top)] = lex_ids[top]
    cand = union_candidates(d_ids, b_ids)
    dense = np.zeros(cand.shape, np.float32)
    lexs = np.zeros(cand.shape, np.float32)
    for qi in range(len(queries)):
        valid = cand[qi] >= 0
        ids_row = cand[qi, valid]
        if len(ids_row):
            dense[qi, valid] = vectors.get(ids_row) @ qvecs[qi]
            lexs[qi, valid] = lex_of(ids_row, qi)
    if stats == "corpus":
        d_stats = (dense_stats or DenseStats.from_index(vectors))(qvecs)
        l_stats = (lex_all.mean(axis=1), lex_all.std(axis=1)) if lex_all.shape[1] else (
            np.zeros(len(queries)), np.ones(len(queries)))
    else:
        masked = np.where(cand >= 0, 1.0, 0.0)
        cnt = np.maximum(masked.sum(axis=1), 1)

        def cand_stats(x):
            m = (x * masked).sum(axis=1) / cnt
            return m, np.sqrt((((x - m[:, None]) ** 2) * masked).sum(axis=1) / cnt)

        d_stats, l_stats = cand_stats(dense), cand_stats(lexs)
    return fuse(cand, dense, lexs, d_stats, l_stats, dense_weight, bm25_weight, k)
