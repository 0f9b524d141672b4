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
the top k picked with ``argpartition``. The arithmetic (z-scores, top k,
near-duplicate groups, candidate fusion) is pure NumPy in ``qa.fusion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.config import RETRIEVAL_MODES, RetrievalConfig
from qa.errors import RetrievalModeError
from qa.fusion import (DenseStats, candidate_hybrid, duplicate_groups, fused_scores, group_weights,
                       one_per_group, top_rows, zscore)  # noqa: F401 (zscore: re-exported)


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


def top_hits(scores: np.ndarray, k: int) -> list[list[Hit]]:
    """The k best rows of each score vector, best first (ties: lower row first)."""
    cols, vals = top_rows(scores, k)
    return [[Hit(int(r), float(v)) for r, v in zip(rr, vv)] for rr, vv in zip(cols, vals)]


def rrf(lists: list[list[Hit]], weights: list[float], k: int) -> list[Hit]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank) over the lists."""
    fused: dict[int, float] = {}
    for hits, w in zip(lists, weights):
        for rank, h in enumerate(hits, start=1):
            fused[h.row] = fused.get(h.row, 0.0) + w / (k + rank)
    return [Hit(r, s) for r, s in sorted(fused.items(), key=lambda x: (-x[1], x[0]))]


def dense_stats(store: Any) -> DenseStats:
    """Corpus statistics of the cosine for candidate fusion, sampled once per snapshot."""
    stats = getattr(store, "_dense_stats", None)
    if stats is None:
        stats = store._dense_stats = DenseStats.from_index(store.vectors)
    return stats


def index_duplicate_groups(store: Any, threshold: float) -> np.ndarray:
    """Near-duplicate group of every row of the snapshot (``qa.fusion.duplicate_groups``),
    computed once per snapshot and threshold."""
    cached = getattr(store, "_duplicate_groups", None)
    if cached is None or cached[0] != threshold:
        cached = store._duplicate_groups = (threshold, duplicate_groups(store.chunk_vectors(), threshold))
    return cached[1]


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
        # (block x chunks floats stay small however many questions come in), or
        # over each signal's candidates for a large index; then near-duplicates
        # keep one slot each (qa.fusion).
        qvecs = self.embedder.run(queries)
        dup = cfg.duplicate_cosine
        pool = top_k if dup is None else top_k * 3 + 10
        labels = None
        if dup is not None and len(store) <= cfg.duplicate_stats_max:
            labels = index_duplicate_groups(store, dup)
        if len(store) > cfg.exact_fusion_max:
            scores, ids = candidate_hybrid(store.vectors, store.lexical, qvecs, list(queries), pool,
                                           candidates=cfg.fusion_candidates, dense_weight=cfg.dense_weight,
                                           bm25_weight=cfg.bm25_weight, dense_stats=dense_stats(store))
            rows, vals = store.rows(ids), scores
        else:
            weights = group_weights(labels) if labels is not None else None
            block = max(1, min(len(queries), 4_000_000 // max(1, len(store))))
            parts = []
            for a in range(0, len(queries), block):
                dense = dense_scores(store, qvecs[a : a + block])
                lexical = bm25_scores(store, queries[a : a + block])
                parts.append(top_rows(fused_scores(dense, lexical, cfg.dense_weight, cfg.bm25_weight, weights), pool))
            rows = np.concatenate([r for r, _ in parts])
            vals = np.concatenate([v for _, v in parts])
        out: list[list[Hit]] = []
        for rr, vv in zip(rows, vals):
            score_of = {int(r): float(v) for r, v in zip(rr, vv) if r >= 0}
            if dup is None:
                keep = [r for r in rr.tolist() if r >= 0][:top_k]
            else:
                valid = rr[rr >= 0]
                if labels is not None:
                    groups = labels[valid]
                else:  # a large index: groups among this question's pool only
                    groups = valid[duplicate_groups(store.vectors.get(store.chunk_ids[valid]), dup)]
                keep = one_per_group(valid, groups, top_k).tolist()
            out.append([Hit(r, score_of[r]) for r in keep])
        return out
