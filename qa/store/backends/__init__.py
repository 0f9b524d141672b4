"""Vector and lexical index backends: the one registry (name recorded in the
manifest -> class) and the factory that turns a ``StoreConfig`` into new
indexes. Nothing else in ``qa`` names a concrete backend: a backend carries its
own policy (``VectorIndex.create`` reads the options it needs, ``external_resource``
/ ``drop_saved`` say what lives outside the snapshot folder)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

from qa.config import StoreConfig
from qa.store.backends.bm25 import Bm25Index
from qa.store.backends.faiss_flat import FaissFlatIndex
from qa.store.backends.faiss_hnsw import FaissHnswIndex
from qa.store.backends.faiss_ivf import FaissIvfIndex
from qa.store.backends.milvus import MilvusIndex
from qa.store.base import LexicalIndex, VectorIndex, transfer

#: name -> class, for ``load`` by the name a manifest records.
VECTOR_BACKENDS: dict[str, type[VectorIndex]] = {
    c.name: c for c in (FaissFlatIndex, FaissHnswIndex, FaissIvfIndex, MilvusIndex)}
LEXICAL_BACKENDS: dict[str, type[LexicalIndex]] = {Bm25Index.name: Bm25Index}

#: "auto" starts exact and moves to this ANN past ``StoreConfig.ann_threshold`` (docs/scale.md).
AUTO_SMALL: type[VectorIndex] = FaissFlatIndex
AUTO_LARGE: type[VectorIndex] = FaissHnswIndex


def vector_factory(config: StoreConfig) -> Callable[[int], VectorIndex]:
    """dim -> a new empty vector index of the configured backend ("auto": exact first)."""
    cls = AUTO_SMALL if config.vector_backend == "auto" else VECTOR_BACKENDS[config.vector_backend]
    return lambda dim: cls.create(dim, config)


def grown(vectors: VectorIndex, config: StoreConfig) -> VectorIndex:
    """The index an "auto" store publishes: the exact one until it passes
    ``ann_threshold`` live chunks, then the same vectors in the ANN backend (no
    re-embedding). Any other setting keeps ``vectors`` as they are."""
    if (config.vector_backend == "auto" and isinstance(vectors, AUTO_SMALL)
            and len(vectors) > config.ann_threshold):
        return transfer(vectors, AUTO_LARGE.create(vectors.dim, config))
    return vectors


def kept(config: StoreConfig, snapshot: Path | None) -> StoreConfig:
    """The store settings for a fresh build (a rebuild, a re-embedding) of the index
    saved in ``snapshot``: with "auto", nothing was chosen, so the index keeps the
    backend it has (a Milvus index stays on its Milvus, at its URI; it was silently
    moved to faiss-flat). Auto's own pair is left to auto, which chooses by size;
    a backend named in ``config`` is a choice and wins."""
    if config.vector_backend != "auto" or snapshot is None:
        return config
    try:
        name = json.loads((Path(snapshot) / "manifest.json").read_text())["vector_index"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return config  # nothing readable to keep
    cls = VECTOR_BACKENDS.get(name) if isinstance(name, str) else None
    if cls is None or cls in (AUTO_SMALL, AUTO_LARGE):
        return config
    return replace(config, **cls.saved_options(Path(snapshot) / "vectors"))


def external_resource(folder: Path) -> tuple[type[VectorIndex], str] | None:
    """(backend, name) of what a saved vector folder keeps outside itself (a
    Milvus collection), or None. Asks every backend, so a half-written folder
    without a manifest is covered too."""
    for cls in VECTOR_BACKENDS.values():
        name = cls.external_resource(folder)
        if name is not None:
            return cls, name
    return None


__all__ = ["Bm25Index", "FaissFlatIndex", "FaissHnswIndex", "FaissIvfIndex", "LEXICAL_BACKENDS", "MilvusIndex",
           "VECTOR_BACKENDS", "external_resource", "grown", "kept", "transfer", "vector_factory"]
