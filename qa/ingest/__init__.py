"""Ingestion: files on disk become ``Document`` objects whose text every offset points into.

One loader per format (``qa.ingest.registry.LOADERS``): plain text and
Markdown byte-exact, PDF (pypdfium2, page locators), HTML (selectolax, main
content only, section locators), Word .docx (python-docx, section locators).
"""

from qa.ingest.base import Extracted, Loader
from qa.ingest.batch import BatchResult, FileReport, load_batch
from qa.errors import (
    CorruptDocumentError,
    DuplicateDocumentError,
    EncryptedDocumentError,
    FileTooLargeError,
    FormatMismatchError,
    NoTextLayerError,
)
from qa.ingest.loading import (
    document_from_bytes,
    document_from_text,
    iter_paths,
    load_file,
    load_paths,
)
from qa.ingest.metadata import parse_metadata, sha256_text
from qa.ingest.registry import LOADERS, SUPPORTED_SUFFIXES, loader_for

__all__ = [
    "BatchResult", "CorruptDocumentError", "DuplicateDocumentError", "EncryptedDocumentError", "Extracted",
    "FileReport", "FileTooLargeError", "FormatMismatchError", "LOADERS", "Loader", "NoTextLayerError",
    "SUPPORTED_SUFFIXES", "document_from_bytes", "document_from_text", "iter_paths", "load_batch", "load_file",
    "load_paths", "loader_for", "parse_metadata", "sha256_text",
]
