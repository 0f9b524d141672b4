"""Hybrid score fusion, pure NumPy: z-scores, top k, candidate fusion, near-duplicates.

The retriever (``qa.retrieval``) fetches scores through the store's interfaces;
everything that turns scores into a ranking lives here, so a test can feed
hand-made arrays.

Hybrid fusion adds the z-normalised cosine similarity and BM25 score of each
chunk. A z-score is a statistic of the corpus, and a small corpus breaks it in
one common way: the same text repeated (a PDF's boilerplate on every page, a
disclaimer in every file). Eight copies of one chunk count eight times in the
mean and standard deviation, and take eight of the k passages read, pushing
out the one chunk that holds the answer. So chunks whose embeddings have a
cosine of at least ``duplicate_cosine`` (0.95 by default: same text up to a
page number or a name) form a group that

- counts once in the z-score statistics (each member weighs 1 / group size),
  where the groups of the whole index are known (small indexes, computed once
  per snapshot), and
- takes one top-k slot: only the best member of a group is returned (always,
  over a pool of the best few chunks).

Large corpora go through candidate fusion (``candidate_hybrid``): each signal's
top-C candidates, z-scored with full-corpus statistics (exact for BM25, a fixed
sample of stored vectors for the cosine), so the fused score of a candidate
equals its all-chunk fused score up to that estimate (docs/scale.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# --- z-scores and top k --------------------------------------------------------------


def zscore(scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Row-wise (x - mean) / std, with each column weighing ``weights`` (default 1)
    in the mean and std; a constant row becomes zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    if weights is None:
        mean = scores.mean(axis=1, keepdims=True)
        std = scores.std(axis=1, keepdims=True)
    else:
        w = np.asarray(weights, dtype=np.float64)[None, :]
        total = max(float(w.sum()), 1e-12)
        mean = (scores * w).sum(axis=1, keepdims=True) / total
        std = np.sqrt((((scores - mean) ** 2) * w).sum(axis=1, keepdims=True) / total)
    return np.where(std > 1e-9, (scores - mean) / np.maximum(std, 1e-9), 0.0).astype(np.float32)


def fused_scores(dense: np.ndarray, lexical: np.ndarray, dense_weight: float, bm25_weight: float,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum of z-normalised dense and BM25 scores, [n_queries, n_chunks]
    (``weights``: each chunk's weight in the z-score statistics)."""
    return dense_weight * zscore(dense, weights) + bm25_weight * zscore(lexical, weights)


def top_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row, best first (ties: lower column first):
    (columns [nq, k'], their scores [nq, k']) with k' = min(k, n)."""
    scores = np.asarray(scores)
    nq, n = scores.shape
    k = min(k, n)
    if k <= 0:
        return np.zeros((nq, 0), np.int64), np.zeros((nq, 0), scores.dtype)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (nq, 1))
    cols = np.empty((nq, k), np.int64)
    for i, (row, cand) in enumerate(zip(scores, part)):
        cand = np.sort(cand)  # stable tie order by column
        cols[i] = cand[np.argsort(-row[cand], kind="stable")]
    return cols, np.take_along_axis(scores, cols, axis=1)


# --- near-duplicates ------------------------------------------------------------------


def duplicate_groups(vectors: np.ndarray, threshold: float, block: int = 1024) -> np.ndarray:
    """Group label of each row: rows linked by cosine >= ``threshold`` (vectors are
    unit length) share the label of the group's first row. Connected components,
    computed a block of rows at a time ([block, n] similarities in memory)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in range(0, n, block):
        sims = vectors[a:a + block] @ vectors.T
        ii, jj = np.nonzero(sims >= threshold)
        for i, j in zip((ii + a).tolist(), jj.tolist()):
            if j > i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return np.asarray([find(i) for i in range(n)], dtype=np.int64)


def group_weights(labels: np.ndarray) -> np.ndarray:
    """1 / (size of the row's group): a group of copies weighs as one chunk."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def one_per_group(cols: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` of ``cols`` (best first, -1 = padding) keeping only the best of each group
    (``labels[j]``: the group of ``cols[j]``)."""
    seen: set[int] = set()
    out = []
    for c, g in zip(cols.tolist(), np.asarray(labels).tolist()):
        if c < 0 or g in seen:
            continue
        seen.add(g)
        out.append(c)
        if len(out) == k:
            break
    return np.asarray(out, dtype=np.int64)


# --- candidate fusion (large or approximate indexes) -----------------------------------


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

    1. dense top-C from the vector index (ANN), lexical top-C from BM25;
    2. the union of both lists; a lexical-only candidate's cosine is computed
       exactly from its stored vector (``VectorIndex.get``), a dense-only
       candidate's BM25 score is read from the lexical score row;
    3. ``stats="corpus"``: z-scores with full-corpus statistics (exact for BM25,
       a ``dense_stats`` sample for cosine; built from ``vectors`` when None);
       ``stats="candidates"``: over the candidate union (measured worse, kept
       for comparison). With C >= the number of chunks and exact statistics the
       result equals the all-chunk fusion (``tests/test_candidates.py``).
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
    # every candidate vector of the batch in one ``get``: for a remote store (Milvus) one call per
    # question was one round trip per question (10,570 SQuAD questions: minutes of gRPC)
    uniq = np.unique(cand[cand >= 0])
    stored = vectors.get(uniq) if len(uniq) else np.zeros((0, qvecs.shape[1]), np.float32)
    for qi in range(len(queries)):
        valid = cand[qi] >= 0
        ids_row = cand[qi, valid]
        if len(ids_row):
            dense[qi, valid] = stored[np.searchsorted(uniq, ids_row)] @ qvecs[qi]
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
