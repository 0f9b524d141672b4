"""Ranking chunks for a question: dense (FAISS), lexical (BM25) or both fused.

Dense retrieval finds paraphrases; BM25 finds rare names and numbers that a
small embedder blurs. The default "hybrid" mode fuses their *scores*: each
question's cosine similarities and BM25 scores over every chunk are z-normalised
(mean 0, standard deviation 1 across the chunks) and added with weights, so a
chunk that is nearly as good on one signal and far better on the other wins,
which rank fusion cannot see (measured recall per mode: README "Retrieval");
"rrf" keeps weighted reciprocal rank fusion selectable. The retriever talks
to the store only through its vector and lexical index interfaces
(``qa.store.base``); scores are computed for a batch of questions at once and
the top k picked with ``argpartition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.config import RETRIEVAL_MODES, RetrievalConfig
from qa.errors import RetrievalModeError


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its row in the store and a score (higher is better)."""

    row: int
    score: float


def _hits(store: Any, scores: np.ndarray, ids: np.ndarray) -> list[list[Hit]]:
    """Backend results (chunk ids) to hits (rows of the snapshot), padding dropped."""
    rows = store.rows(ids)
    return [[Hit(int(r), float(sc)) for r, sc in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]


def dense_search(store: Any, query_vecs: np.ndarray, k: int) -> list[list[Hit]]:
    if len(store) == 0:
        return [[] for _ in range(len(query_vecs))]
    return _hits(store, *store.vectors.search(query_vecs, min(k, len(store))))


def bm25_search(store: Any, queries: list[str], k: int) -> list[list[Hit]]:
    if len(store) == 0:
        return [[] for _ in queries]
    return _hits(store, *store.lexical.search(queries, min(k, len(store))))


def dense_scores(store: Any, query_vecs: np.ndarray) -> np.ndarray:
    """Cosine similarity of every chunk for every query, float32 [n_queries, n_chunks] in row order."""
    out = np.zeros((len(query_vecs), len(store)), dtype=np.float32)
    if len(store) == 0:
        return out
    scores, ids = store.vectors.search(query_vecs, len(store))
    rows = store.rows(ids)
    q = np.repeat(np.arange(len(query_vecs)), rows.shape[1]).reshape(rows.shape)
    ok = rows >= 0
    out[q[ok], rows[ok]] = scores[ok]
    return out


def bm25_scores(store: Any, queries: list[str]) -> np.ndarray:
    """BM25 score of every chunk for every query, float32 [n_queries, n_chunks] in row order
    (all zeros for a query with no indexed term)."""
    out = np.zeros((len(queries), len(store)), dtype=np.float32)
    if len(store) == 0:
        return out
    out[:, store.rows(store.lexical.ids())] = store.lexical.scores(queries)
    return out


def zscore(scores: np.ndarray) -> np.ndarray:
    """Row-wise (x - mean) / std; a constant row becomes zeros."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.where(std > 1e-9, (scores - mean) / np.maximum(std, 1e-9), 0.0).astype(np.float32)


def fused_scores(dense: np.ndarray, lexical: np.ndarray, dense_weight: float, bm25_weight: float) -> np.ndarray:
    """Weighted sum of z-normalised dense and BM25 scores, [n_queries, n_chunks]."""
    return dense_weight * zscore(dense) + bm25_weight * zscore(lexical)


def top_hits(scores: np.ndarray, k: int) -> list[list[Hit]]:
    """The k best rows of each score vector, best first (ties: lower row first)."""
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return [[] for _ in range(len(scores))]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(scores), 1))
    out = []
    for row_scores, cand in zip(scores, part):
        cand = np.sort(cand)  # stable tie order by row
        order = cand[np.argsort(-row_scores[cand], kind="stable")]
        out.append([Hit(int(r), float(row_scores[r])) for r in order])
    return out


def rrf(lists: list[list[Hit]], weights: list[float], k: int) -> list[Hit]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank) over the lists."""
    fused: dict[int, float] = {}
    for hits, w in zip(lists, weights):
        for rank, h in enumerate(hits, start=1):
            fused[h.row] = fused.get(h.row, 0.0) + w / (k + rank)
    return [Hit(r, s) for r, s in sorted(fused.items(), key=lambda x: (-x[1], x[0]))]


def dense_stats(store: Any):
    """Corpus statistics of the cosine for candidate fusion, sampled once per snapshot."""
    from qa.store.backends.candidates import DenseStats

    stats = getattr(store, "_dense_stats", None)
    if stats is None:
        stats = store._dense_stats = DenseStats.from_index(store.vectors)
    return stats


class Retriever:
    """Top-k chunks for a batch of questions, by the configured mode."""

    def __init__(self, embedder: Any, config: RetrievalConfig | None = None) -> None:
        self.embedder = embedder
        self.config = config or RetrievalConfig()

    def run(self, store: Any, queries: list[str], top_k: int | None = None, mode: str | None = None) -> list[list[Hit]]:
        cfg = self.config
        top_k = cfg.top_k if top_k is None else top_k
        mode = cfg.mode if mode is None else mode
        if mode not in RETRIEVAL_MODES:
            raise RetrievalModeError(f"unknown retrieval mode {mode!r}: use one of {', '.join(RETRIEVAL_MODES)}")
        if len(store) == 0 or not queries:
            return [[] for _ in queries]
        if mode == "dense":
            return [h[:top_k] for h in dense_search(store, self.embedder.run(queries), top_k)]
        if mode == "bm25":
            return [h[:top_k] for h in bm25_search(store, queries, top_k)]
        if mode == "rrf":
            depth = max(cfg.candidates, top_k)
            dense = dense_search(store, self.embedder.run(queries), depth)
            lexical = bm25_search(store, queries, depth)
            return [
                rrf([d, b], [cfg.rrf_dense_weight, cfg.rrf_bm25_weight], cfg.rrf_k)[:top_k]
                for d, b in zip(dense, lexical)
            ]
        # hybrid: score fusion over every chunk, a block of questions at a time
        # (block x chunks floats stay small however many questions come in).
        qvecs = self.embedder.run(queries)
        if len(store) > cfg.exact_fusion_max:
            return self._candidate_hybrid(store, qvecs, queries, top_k)
        out: list[list[Hit]] = []
        block = max(1, min(len(queries), 4_000_000 // max(1, len(store))))
        for a in range(0, len(queries), block):
            dense = dense_scores(store, qvecs[a : a + block])
            lexical = bm25_scores(store, queries[a : a + block])
            out.extend(top_hits(fused_scores(dense, lexical, cfg.dense_weight, cfg.bm25_weight), top_k))
        return out

    def _candidate_hybrid(self, store: Any, qvecs: np.ndarray, queries: list[str], top_k: int) -> list[list[Hit]]:
        """Hybrid fusion for large (or approximate) indexes: the top candidates of
        each signal, z-scored with corpus statistics (measured on SQuAD dev: the
        same top-1 as all-chunk fusion for 99.7% of questions; docs/scale.md)."""
        from qa.store.backends.candidates import candidate_hybrid

        cfg = self.config
        scores, ids = candidate_hybrid(store.vectors, store.lexical, qvecs, list(queries), top_k,
                                       candidates=cfg.fusion_candidates, dense_weight=cfg.dense_weight,
                                       bm25_weight=cfg.bm25_weight, dense_stats=dense_stats(store))
        return _hits(store, scores, ids)
