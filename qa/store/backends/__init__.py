"""Vector and lexical index backends, chosen by the name recorded in the manifest."""

from __future__ import annotations

from qa.store.backends.bm25 import Bm25Index
from qa.store.backends.faiss_ann import FaissHnswIndex, FaissIvfIndex
from qa.store.backends.faiss_flat import FaissFlatIndex
from qa.store.backends.milvus import MilvusIndex
from qa.store.base import LexicalIndex, VectorIndex

#: name -> class; a backend registers itself here so ``load`` can find it by name.
VECTOR_BACKENDS: dict[str, type[VectorIndex]] = {FaissFlatIndex.name: FaissFlatIndex}
VECTOR_BACKENDS.update({c.name: c for c in (FaissHnswIndex, FaissIvfIndex, MilvusIndex)})
LEXICAL_BACKENDS: dict[str, type[LexicalIndex]] = {Bm25Index.name: Bm25Index}

__all__ = ["Bm25Index", "FaissFlatIndex", "LEXICAL_BACKENDS", "VECTOR_BACKENDS"]
