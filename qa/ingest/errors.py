"""The ingestion-specific kinds of ``qa.errors.DocumentError``.

Each subclasses one of the general classes in ``qa.errors`` so callers that
catch those (the CLI, the app, ``except DocumentError``) keep working, while
tests and the batch summary can tell the cases apart.
"""

from __future__ import annotations

from qa.errors import DocumentError, DocumentUnreadableError, EmptyDocumentError, UnsupportedFormatError


class FileTooLargeError(DocumentUnreadableError):
    """The file is over the size limit (``max_bytes``)."""


class CorruptDocumentError(DocumentUnreadableError):
    """The file claims a format but cannot be parsed: corrupt or truncated."""


class EncryptedDocumentError(DocumentUnreadableError):
    """The file is password-protected (encrypted PDF, encrypted Office file)."""


class NoTextLayerError(EmptyDocumentError):
    """A PDF whose pages are images only (a scan): OCR is out of scope."""


class FormatMismatchError(UnsupportedFormatError):
    """The extension says one format, the content (its magic bytes) another."""


class DuplicateDocumentError(DocumentError):
    """The same text was already loaded from another file in this batch."""
