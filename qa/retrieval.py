"""Ranking chunks for a question: dense (FAISS), lexical (BM25) or both fused.

Dense retrieval finds paraphrases; BM25 finds rare names and numbers that a
small embedder blurs. Weighted reciprocal rank fusion combines the two ranked
lists without having to calibrate their incomparable raw scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.config import RetrievalConfig

BM25_PARAMS: dict[str, Any] = {"method": "lucene", "k1": 1.2, "b": 0.75, "stopwords": "en", "stemmer": "english"}


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer(BM25_PARAMS["stemmer"])


def bm25_tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords=BM25_PARAMS["stopwords"], stemmer=_stemmer(),
                          return_ids=False, show_progress=False)


def build_bm25(texts: list[str]) -> Any:
    """A bm25s index over chunk texts (same tokenisation as queries)."""
    import bm25s

    retriever = bm25s.BM25(method=BM25_PARAMS["method"], k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"])
    retriever.index(bm25_tokenize(texts), show_progress=False)
    return retriever


def load_bm25(path: str) -> Any:
    import bm25s

    return bm25s.BM25.load(path)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its row in the store and a score (higher is better)."""

    row: int
    score: float


def dense_search(store: Any, query_vecs: np.ndarray, k: int) -> list[list[Hit]]:
    if len(store) == 0:
        return [[] for _ in range(len(query_vecs))]
    scores, rows = store.faiss.search(np.ascontiguousarray(query_vecs, dtype=np.float32), min(k, len(store)))
    return [[Hit(int(r), float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]


def bm25_search(store: Any, queries: list[str], k: int) -> list[list[Hit]]:
    if store.bm25 is None or len(store) == 0:
        return [[] for _ in queries]
    out = []
    vocab = store.bm25.vocab_dict
    for toks in bm25_tokenize(queries):
        toks = [t for t in toks if t in vocab]
        if not toks:
            out.append([])
            continue
        rows, scores = store.bm25.retrieve([toks], k=min(k, len(store)), show_progress=False, n_threads=1)
        out.append([Hit(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if s > 0])
    return out


def rrf(lists: list[list[Hit]], weights: list[float], k: int) -> list[Hit]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank) over the lists."""
    fused: dict[int, float] = {}
    for hits, w in zip(lists, weights):
        for rank, h in enumerate(hits, start=1):
            fused[h.row] = fused.get(h.row, 0.0) + w / (k + rank)
    return [Hit(r, s) for r, s in sorted(fused.items(), key=lambda x: (-x[1], x[0]))]


class Retriever:
    """Top-k chunks for a batch of questions, by the configured mode."""

    def __init__(self, embedder: Any, config: RetrievalConfig | None = None) -> None:
        self.embedder = embedder
        self.config = config or RetrievalConfig()

    def run(self, store: Any, queries: list[str], top_k: int | None = None, mode: str | None = None) -> list[list[Hit]]:
        cfg = self.config
        top_k = cfg.top_k if top_k is None else top_k
        mode = cfg.mode if mode is None else mode
        depth = max(cfg.candidates, top_k)
        if mode == "dense":
            return [h[:top_k] for h in dense_search(store, self.embedder.run(queries), top_k)]
        if mode == "bm25":
            return [h[:top_k] for h in bm25_search(store, queries, top_k)]
        if mode != "hybrid":
            raise ValueError(f"unknown retrieval mode {mode!r}")
        dense = dense_search(store, self.embedder.run(queries), depth)
        lexical = bm25_search(store, queries, depth)
        return [
            rrf([d, b], [cfg.dense_weight, cfg.bm25_weight], cfg.rrf_k)[:top_k]
            for d, b in zip(dense, lexical)
        ]
