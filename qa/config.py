"""All tunable settings in one place, with defaults that work out of the box.

Settings are a frozen dataclass so a ``QA`` instance cannot drift at run time;
derive variants with ``dataclasses.replace``. Paths default to the repository
layout (``seeds/``, ``index/``, ``models/reader``) and can be overridden by the
``QA_INDEX_DIR``, ``QA_CORPUS_DIR`` and ``QA_READER`` environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Bumped whenever the on-disk index layout changes; older indexes are rebuilt.
INDEX_FORMAT_VERSION = 1

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md")


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value) if value else default


@dataclass(frozen=True)
class ChunkingConfig:
    """Sentence-packed chunks. ~100 words keeps a chunk inside the embedder's
    256-token window and inside one reader window, while the sentence overlap
    lets answers that straddle a boundary be read whole from one chunk."""

    max_words: int = 100
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if self.max_words < 10:
            raise ValueError("chunking.max_words must be at least 10")
        if self.overlap_sentences < 0:
            raise ValueError("chunking.overlap_sentences must be >= 0")


#: "hybrid" fuses z-normalised dense and BM25 scores (the default, best measured);
#: "rrf" is the older weighted reciprocal rank fusion, kept for comparison.
RETRIEVAL_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25", "rrf")


@dataclass(frozen=True)
class RetrievalConfig:
    """Which retriever ranks chunks and how hybrid fusion weighs its inputs.

    Defaults measured on SQuAD v1.1 dev in open mode (2,067 paragraphs, 3,949
    chunks), weights tuned on the questions of the training articles only:
    hybrid z-score fusion 0.65 dense / 0.35 BM25 gives recall@1 0.82 and
    recall@5 0.96, against 0.66 / 0.88 for dense alone, 0.77 / 0.92 for BM25
    alone and 0.78 / 0.94 for equal-weight RRF (see docs/retrieval.md).
    """

    mode: str = "hybrid"  # one of RETRIEVAL_MODES
    top_k: int = 5  # passages handed to the reader (and shown as sources)
    candidates: int = 50  # depth of each ranked list before rank fusion ("rrf")
    dense_weight: float = 0.65  # hybrid: weight of the z-scored cosine similarity
    bm25_weight: float = 0.35  # hybrid: weight of the z-scored BM25 score
    rrf_k: int = 60  # "rrf" (and follow-up fusion): 1 / (rrf_k + rank)
    rrf_dense_weight: float = 1.0
    rrf_bm25_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval.mode must be one of {', '.join(RETRIEVAL_MODES)}, not {self.mode!r}")
        if self.top_k < 1:
            raise ValueError("retrieval.top_k must be >= 1")
        if self.candidates < self.top_k:
            raise ValueError("retrieval.candidates must be >= top_k")
        if min(self.dense_weight, self.bm25_weight, self.rrf_dense_weight, self.rrf_bm25_weight) < 0:
            raise ValueError("retrieval weights must be >= 0")
        if self.dense_weight + self.bm25_weight <= 0:
            raise ValueError("retrieval.dense_weight + retrieval.bm25_weight must be > 0")


@dataclass(frozen=True)
class ReaderConfig:
    """Span reader settings. ``min_score`` is the calibrated probability below
    which ``ask`` answers "" (None: use the threshold shipped with the model,
    chosen on validation articles)."""

    path: Path = field(default_factory=lambda: _env_path("QA_READER", ROOT / "models" / "reader"))
    max_length: int = 384
    stride: int = 128
    max_answer_tokens: int = 30
    n_best: int = 20
    batch_size: int = 32
    min_score: float | None = None
    bf16: bool = True

    def __post_init__(self) -> None:
        if self.stride >= self.max_length // 2:
            raise ValueError("reader.stride must be under half of reader.max_length")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ValueError("reader.min_score is a probability in [0, 1]")


@dataclass(frozen=True)
class Settings:
    """Everything a ``QA`` instance needs; the defaults serve the seed corpus."""

    index_dir: Path = field(default_factory=lambda: _env_path("QA_INDEX_DIR", ROOT / "index"))
    corpus_dir: Path | None = field(default_factory=lambda: _env_path("QA_CORPUS_DIR", ROOT / "seeds"))
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    embed_batch_size: int = 64
    max_question_chars: int = 1000
    max_file_bytes: int = 10 * 1024 * 1024
    history_turns: int = 2  # earlier turns folded into the retrieval query
