"""BM25 over chunk texts with bm25s (sparse, vectorised NumPy; rebuilt whole on
every update, which costs about 0.2 s per 4,000 chunks)."""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.config import BM25Config
from qa.store.base import LexicalIndex

IDS_FILE = "ids.npy"
#: The one term of a corpus whose chunks hold no term at all (a document "x", or
#: only stop words): bm25s cannot index an empty vocabulary (a bare ``max()`` of
#: nothing), and a query never holds this (the tokenizer makes no control characters).
NO_TERMS = "\x00qa-no-terms"


def _stemmer(config: BM25Config):
    import Stemmer

    return Stemmer.Stemmer(config.stemmer) if config.stemmer else None


@cache
def _invisible() -> dict[int, None]:
    """Every format character (Unicode category Cf: zero-width spaces and joiners,
    soft hyphens, word joiners, byte order marks, direction marks), mapped to nothing.

    A .txt or .md keeps them in its stored text (its offsets are the file's), and
    bm25s's tokenizer cuts words at them: 'Donau\u200bdampf' became 'donau' + 'dampf',
    which the question 'Donaudampf' never matches. Dropped for search only; the
    stored text and every offset stay as they are.
    """
    return {c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}


def tokenize(texts: Sequence[str], config: BM25Config) -> list[list[str]]:
    import bm25s

    visible = [t.translate(_invisible()) for t in texts]
    return bm25s.tokenize(visible, stopwords=config.stopwords, stemmer=_stemmer(config),
                          return_ids=False, show_progress=False)


class Bm25Index(LexicalIndex):
    name = "bm25s"

    def __init__(self, retriever, ids: np.ndarray, config: BM25Config) -> None:
        self._bm25 = retriever  # None when there is nothing to index
        self._ids = np.asarray(ids, dtype=np.int64)
        self.config = config

    @classmethod
    def build(cls, ids: np.ndarray, texts: Sequence[str], config: BM25Config | None = None) -> "Bm25Index":
        import bm25s

        config = config or BM25Config()
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) != len(texts):
            raise ValueError("one id per text")
        retriever = None
        if len(texts):
            tokens = tokenize(texts, config)
            if not any(tokens):
                tokens[0] = [NO_TERMS]
            retriever = bm25s.BM25(method=config.method, k1=config.k1, b=config.b)
            retriever.index(tokens, show_progress=False)
        return cls(retriever, ids, config)

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> np.ndarray:
        return self._ids

    def _term_ids(self, queries: Sequence[str]) -> list[list[int]]:
        vocab = self._bm25.vocab_dict
        return [[vocab[t] for t in toks if t in vocab] for toks in tokenize(queries, self.config)]

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(queries), len(self)), dtype=np.float32)
        if self._bm25 is None:
            return out
        for i, terms in enumerate(self._term_ids(queries)):
            if terms:
                out[i] = self._bm25.get_scores_from_ids(terms)
        return out

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.zeros((len(queries), max(k, 0)), dtype=np.float32)
        ids = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        if self._bm25 is None or k <= 0:
            return scores, ids
        n = min(k, len(self))
        for i, terms in enumerate(self._term_ids(queries)):
            if not terms:
                continue
            s = self._bm25.get_scores_from_ids(terms)
            top = np.argpartition(-s, n - 1)[:n] if n < len(s) else np.arange(len(s))
            top = top[np.argsort(-s[top], kind="stable")]
            top = top[s[top] > 0]
            scores[i, : len(top)], ids[i, : len(top)] = s[top], self._ids[top]
        return scores, ids

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        np.save(folder / IDS_FILE, self._ids, allow_pickle=False)
        if self._bm25 is not None:
            self._bm25.save(str(folder / "bm25s"))

    @classmethod
    def load(cls, folder: Path, config: BM25Config | None = None) -> "Bm25Index":
        import bm25s

        folder = Path(folder)
        ids = np.load(folder / IDS_FILE, allow_pickle=False)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(f"{IDS_FILE} holds {ids.dtype} of shape {ids.shape}, not a list of ids")
        retriever = None
        if len(ids):
            if not (folder / "bm25s").is_dir():
                raise FileNotFoundError(f"{folder / 'bm25s'} is missing")
            retriever = bm25s.BM25.load(str(folder / "bm25s"))
            n = int(retriever.scores.get("num_docs", len(ids)))
            if n != len(ids):
                raise ValueError(f"the BM25 index holds {n} chunks, its id list {len(ids)}")
        return cls(retriever, ids, config or BM25Config())
