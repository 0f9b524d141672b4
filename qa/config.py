"""All tunable settings in one place, with defaults that work out of the box.

Settings are frozen dataclasses so a ``QA`` instance cannot drift at run time;
derive variants with ``dataclasses.replace``. The shipped reader is package
data (``qa/models/reader``), so a plain ``pip install .`` answers. The index and
the default corpus are the checkout's ``index/`` and ``seeds/`` when running
from a checkout, else ``./index`` and no corpus; the ``QA_INDEX_DIR``,
``QA_CORPUS_DIR`` and ``QA_READER`` environment variables override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
#: The shipped reader (weights, tokenizer, calibration), installed with the package.
SHIPPED_READER = PACKAGE_DIR / "models" / "reader"


def _home() -> Path:
    """The checkout when ``qa`` runs from one (it has seeds/ next to qa/), else the working directory."""
    checkout = PACKAGE_DIR.parent
    return checkout if (checkout / "seeds").is_dir() and (checkout / "pyproject.toml").is_file() else Path.cwd()


def _default_corpus() -> Path | None:
    seeds = _home() / "seeds"
    return seeds if seeds.is_dir() else None

#: Bumped whenever the on-disk index layout changes; older indexes are rebuilt.
INDEX_FORMAT_VERSION = 2



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
            raise ConfigError("chunking.max_words must be at least 10")
        if self.overlap_sentences < 0:
            raise ConfigError("chunking.overlap_sentences must be >= 0")


@dataclass(frozen=True)
class BM25Config:
    """BM25 settings (bm25s). k1 and b were tuned on the training articles of
    SQuAD v1.1 dev (chunks of ~100 words): a low k1 saturates term frequency
    early, which suits short chunks. Recorded in the index manifest."""

    method: str = "lucene"
    k1: float = 0.5
    b: float = 0.5
    stopwords: str = "en"
    stemmer: str = "english"


VECTOR_BACKEND_CHOICES: tuple[str, ...] = ("auto", "faiss-flat", "faiss-hnsw", "faiss-ivf", "milvus")


@dataclass(frozen=True)
class StoreConfig:
    """Which vector index a new index uses. "auto": exact FAISS while small, moved
    to HNSW (no re-embedding) once it passes ``ann_threshold`` chunks, where
    exact search passes ~10 ms a query on 2 cores (docs/scale.md). "milvus"
    keeps the vectors in Milvus at ``milvus_uri`` (a local Milvus Lite file, or
    ``http://host:19530`` for a server). An existing index keeps its backend."""

    vector_backend: str = "auto"
    ann_threshold: int = 50_000
    milvus_uri: str = "milvus.db"

    def __post_init__(self) -> None:
        if self.vector_backend not in VECTOR_BACKEND_CHOICES:
            raise ConfigError(f"store.vector_backend must be one of {', '.join(VECTOR_BACKEND_CHOICES)}, "
                             f"not {self.vector_backend!r}")


#: "hybrid" fuses z-normalised dense and BM25 scores (the default, best measured);
#: "rrf" is the older weighted reciprocal rank fusion, kept for comparison.
RETRIEVAL_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25", "rrf")


@dataclass(frozen=True)
class RetrievalConfig:
    """Which retriever ranks chunks and how hybrid fusion weighs its inputs.

    Weights tuned on the questions of the SQuAD training articles only; the
    measured recall of each mode is in the README ("Retrieval") and
    docs/retrieval.md.
    """

    mode: str = "hybrid"  # one of RETRIEVAL_MODES
    top_k: int = 5  # passages handed to the reader (and shown as sources)
    candidates: int = 50  # depth of each ranked list before rank fusion ("rrf")
    dense_weight: float = 0.65  # hybrid: weight of the z-scored cosine similarity
    bm25_weight: float = 0.35  # hybrid: weight of the z-scored BM25 score
    rrf_k: int = 60  # "rrf" (and follow-up fusion): 1 / (rrf_k + rank)
    exact_fusion_max: int = 50_000  # hybrid over every chunk up to here, over candidates beyond
    fusion_candidates: int = 100  # beyond it: top-C of each signal, z-scored with corpus statistics
    rrf_dense_weight: float = 1.0
    rrf_bm25_weight: float = 1.0
    # hybrid: chunks at this cosine or above are near-duplicates (a PDF's boilerplate
    # on every page): one top-k slot per group, and one weight in the z-score
    # statistics up to duplicate_stats_max chunks (qa.fusion; None: off)
    duplicate_cosine: float | None = 0.95
    duplicate_stats_max: int = 1024  # grouping a whole index: ~0.1 s once per snapshot at 1,024 (bench/small_corpus.py)

    def __post_init__(self) -> None:
        if self.mode not in RETRIEVAL_MODES:
            raise ConfigError(f"retrieval.mode must be one of {', '.join(RETRIEVAL_MODES)}, not {self.mode!r}")
        if self.top_k < 1:
            raise ConfigError("retrieval.top_k must be >= 1")
        if self.candidates < self.top_k:
            raise ConfigError("retrieval.candidates must be >= top_k")
        if min(self.dense_weight, self.bm25_weight, self.rrf_dense_weight, self.rrf_bm25_weight) < 0:
            raise ConfigError("retrieval weights must be >= 0")
        if self.dense_weight + self.bm25_weight <= 0:
            raise ConfigError("retrieval.dense_weight + retrieval.bm25_weight must be > 0")
        if self.duplicate_cosine is not None and not 0.0 < self.duplicate_cosine <= 1.0:
            raise ConfigError("retrieval.duplicate_cosine must be in (0, 1], or None to keep duplicates")


#: Inference engines (qa.engine): "auto" measures the others on this machine.
ENGINE_KINDS: tuple[str, ...] = ("auto", "torch", "torch-bf16", "onnx", "onnx-int8")

# Rows per model call. Smaller batches cost less CPU per row on the 2-core machines measured (activations
# stay in cache): on an AVX512-BF16 EPYC the reader read 64 SQuAD questions in 1.7 CPU s at 8 windows a
# call vs 2.65 at 32 (bf16; fp32 3.3 vs 5.4), the embedder 128 chunks in 1.4-1.7 s at 16 vs 2.1 at 64
# (docs/engine.md). Below these, gains were within noise and per-call overhead grows.
EMBED_BATCH = 16
READER_BATCH = 8


@dataclass(frozen=True)
class EngineConfig:
    """How both models run (``qa.engine``). ``kind`` "auto" times the candidate
    engines once per machine (CPU, flags, versions, weights) in process CPU time
    and keeps PyTorch fp32 unless another is ``min_speedup`` times cheaper.
    ``int8``: the models ("embedder", "reader") for which auto may pick ONNX
    int8; none by default, as neither quality gate holds (docs/engine.md:
    embedder SQuAD-open R@1 -0.007, reader held-out F1 -2.1). ``threads``: intra-op threads
    (0: the library default). The ``QA_ENGINE`` environment variable overrides
    ``kind``; exported graphs are cached in ``cache_dir``. ``probe_embedder`` /
    ``probe_reader``: the (rows, tokens) batch auto times, shaped like one real
    call (``EMBED_BATCH`` chunks of ~100 words; ``READER_BATCH`` question+passage windows)."""

    kind: str = "auto"
    int8: tuple[str, ...] = ()
    min_speedup: float = 1.1
    threads: int = 0
    probe_embedder: tuple[int, int] = (EMBED_BATCH, 128)
    probe_reader: tuple[int, int] = (READER_BATCH, 192)
    cache_dir: Path = field(default_factory=lambda: _env_path("QA_ENGINE_CACHE", Path("~/.cache/qa/engines")))

    def __post_init__(self) -> None:
        if self.kind not in ENGINE_KINDS:
            raise ConfigError(f"engine.kind must be one of {', '.join(ENGINE_KINDS)}, not {self.kind!r}")
        if not set(self.int8) <= {"embedder", "reader"}:
            raise ConfigError(f"engine.int8 names models: 'embedder' and/or 'reader', not {self.int8!r}")
        if self.min_speedup < 1.0:
            raise ConfigError("engine.min_speedup must be >= 1")
        if self.threads < 0:
            raise ConfigError("engine.threads must be >= 0")
        for name in ("probe_embedder", "probe_reader"):
            rows, tokens = getattr(self, name)
            if rows < 1 or not 8 <= tokens <= 512:
                raise ConfigError(f"engine.{name}: (rows >= 1, 8 <= tokens <= 512), not {getattr(self, name)!r}")


@dataclass(frozen=True)
class ReaderConfig:
    """Span reader settings. ``min_score`` is the calibrated probability below
    which ``ask`` answers "" (None: use the threshold shipped with the model,
    chosen on validation articles)."""

    path: Path = field(default_factory=lambda: _env_path("QA_READER", SHIPPED_READER))
    max_length: int = 384
    stride: int = 128
    max_answer_tokens: int = 30
    n_best: int = 20
    batch_size: int = READER_BATCH
    min_score: float | None = None
    bf16: bool = True
    engine: EngineConfig = field(default_factory=EngineConfig)  # QA passes Settings.engine here

    def __post_init__(self) -> None:
        if self.stride >= self.max_length // 2:
            raise ConfigError("reader.stride must be under half of reader.max_length")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ConfigError("reader.min_score is a probability in [0, 1]")


@dataclass(frozen=True)
class PagesConfig:
    """Cited PDF pages rendered as images with the answer highlighted (``qa.pages``).

    ``scale`` 1.5 is 108 dpi: a letter page is 918x1188 pixels, readable in the
    chat and ~100-250 KB as PNG. Rendered pages are cached on disk (rendering
    is ~0.2 s a page, reading the cache ~0.1 ms) within both bounds, the least
    recently used going first. ``band`` is how much of the page height the chat
    shows around the highlight (the whole page is one click away)."""

    cache_dir: Path = field(default_factory=lambda: _env_path("QA_CACHE_DIR", Path.home() / ".cache" / "qa") / "pages")
    max_cache_bytes: int = 64 * 1024 * 1024
    max_cache_files: int = 512
    scale: float = 1.5
    band: float = 0.22

    def __post_init__(self) -> None:
        if not 0.25 <= self.scale <= 6.0:
            raise ConfigError("pages.scale must be between 0.25 and 6")
        if self.max_cache_bytes < 0 or self.max_cache_files < 0:
            raise ConfigError("pages cache bounds must be >= 0")
        if not 0.05 <= self.band <= 1.0:
            raise ConfigError("pages.band is a share of the page height in [0.05, 1]")


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on the work one request may ask for, so no caller (a script, a
    web client) can hold the CPU for minutes: each is refused up front with a
    ``qa.errors.LimitError`` that names the limit. ``top_k`` beyond 50 passages
    reads ~10x the default for no measured gain (docs/retrieval.md); 50 turns and
    20,000 characters of history are far more than the two turns retrieval uses.
    ``web_time_budget_s`` bounds one web request (a question waits in the queue
    and is read within it, or the client gets a clear timeout error).
    ``max_request_bytes`` bounds the body of any web request but an upload (which
    gradio streams to disk): the server reads such a body whole into memory
    before anything can look at it; a question with a full history is under
    150 KB, the largest the page sends (the documents table) ~200 bytes a document.
    ``max_failed_logins_per_user`` failed logins for one user name, or
    ``max_failed_logins_per_client`` from one client address (more: people behind
    one NAT or proxy share it), within ``login_window_s`` refuse further logins
    there for ``login_cooldown_s`` (HTTP 429), the right password included: a
    client could otherwise try passwords without end, one instant 400 each."""

    max_top_k: int = 50
    max_history_turns: int = 50
    max_history_chars: int = 20_000
    web_time_budget_s: float = 120.0
    max_files_per_upload: int = 100
    max_upload_bytes: int = 50 * 1024 * 1024
    max_request_bytes: int = 4 * 1024 * 1024
    max_failed_logins_per_user: int = 5
    max_failed_logins_per_client: int = 20
    login_window_s: float = 600.0
    login_cooldown_s: float = 300.0

    def __post_init__(self) -> None:
        if min(self.max_top_k, self.max_history_turns, self.max_history_chars, self.max_files_per_upload,
               self.max_upload_bytes, self.max_request_bytes, self.max_failed_logins_per_user,
               self.max_failed_logins_per_client) < 1:
            raise ConfigError("limits must be >= 1")
        if not self.web_time_budget_s > 0:
            raise ConfigError("limits.web_time_budget_s must be > 0")
        if not (self.login_window_s > 0 and self.login_cooldown_s > 0):
            raise ConfigError("limits.login_window_s and limits.login_cooldown_s must be > 0")


@dataclass(frozen=True)
class ServingConfig:
    """How the app answers many chat clients at once (``qa.batching.MicroBatcher``).

    Questions arriving within ``batch_window_s`` of each other (or while the
    previous batch is being read) are answered in one batched pass of at most
    ``max_batch``; identical questions in a batch are read once; and the last
    ``answer_cache_size`` answers are kept per published snapshot (and threshold),
    so a question asked again before the index changes costs nothing (0 turns
    the cache off). The window is 50 ms, not 5: under load gradio hands 20
    simultaneous requests over across tens of milliseconds, and with 5 ms the
    stragglers waited a whole extra batch (18 + 2 per round, p50 two batches;
    docs/reliability.md). On 2 CPU cores the reader's cost per distinct question
    is what bounds latency under load.

    ``upload_yield_s``: between two batches of an upload's embedding, how long
    it waits for the questions in flight to finish (``qa.priority``). Questions
    come first, but a steady stream of them cannot stop an upload.
    ``question_grace_s``: how long after the last answer the upload still waits
    (a chat client's next question follows within milliseconds);
    ``upload_batch_when_busy``: the upload's batch while questions are about
    (a question arriving mid-batch waits for that many chunks, not 64)."""

    batch_window_s: float = 0.05
    max_batch: int = 32
    answer_cache_size: int = 256
    upload_yield_s: float = 2.0
    question_grace_s: float = 0.25
    upload_batch_when_busy: int = 8

    def __post_init__(self) -> None:
        if (self.batch_window_s < 0 or self.max_batch < 1 or self.answer_cache_size < 0 or self.upload_yield_s < 0
                or self.question_grace_s < 0 or self.upload_batch_when_busy < 1):
            raise ConfigError("serving: batch_window_s >= 0, max_batch >= 1, answer_cache_size >= 0, "
                              "upload_yield_s >= 0, question_grace_s >= 0, upload_batch_when_busy >= 1")


@dataclass(frozen=True)
class Settings:
    """Everything a ``QA`` instance needs; the defaults serve the seed corpus."""

    index_dir: Path = field(default_factory=lambda: _env_path("QA_INDEX_DIR", _home() / "index"))
    corpus_dir: Path | None = field(default_factory=lambda: _env_path("QA_CORPUS_DIR", _default_corpus()))
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    store: StoreConfig = field(default_factory=StoreConfig)
    pages: PagesConfig = field(default_factory=PagesConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    embed_batch_size: int = EMBED_BATCH
    bf16: bool = True  # bf16 autocast allowed for both models, where the CPU has it (AMX / AVX512-BF16)
    engine: EngineConfig = field(default_factory=EngineConfig)  # both models (qa.engine)
    max_question_chars: int = 1000  # longer questions are a QuestionError (a limit like those in LimitsConfig)
    max_file_bytes: int = 10 * 1024 * 1024
    history_turns: int = 2  # earlier turns folded into the retrieval query


@dataclass(frozen=True)
class ReaderRunConfig:
    """The reader-training run that spans sessions (``make train-reader-bg``) and its rules.

    The run folder lives outside the work tree so that it survives when the same
    machine comes back; ``QA_READER_RUNS`` (``RUNS=`` in the Makefile) moves it."""

    runs_dir: Path = field(default_factory=lambda: _env_path("QA_READER_RUNS", Path.home() / ".cache/qa/reader-runs"))
    # Ship an export only when its validation F1 (all 732 questions) beats the shipped
    # reader's by this much: smaller gains are within run-to-run noise and not worth 45 MB.
    ship_margin_f1: float = 1.0
    # Weights coming back from a lent GPU travel in parts of at most this size (16 MiB cap per file).
    part_mib: int = 15
