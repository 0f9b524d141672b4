"""Exceptions with messages that say what went wrong and how to fix it.

Every error the library raises on bad input is a ``QAError`` so callers (the
CLI, the web app) can catch one type and show ``str(err)`` to the user. They
all live here, in one module every layer may import; the narrower ingestion
kinds subclass the general ones, so ``except DocumentError`` still catches them.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class for every error ``qa`` raises on bad input or bad state."""


class ConfigError(QAError, ValueError):
    """A setting out of range or unknown (also a ``ValueError``, as before)."""


class QuestionError(QAError, ValueError):
    """The question is empty, blank or too long."""


class ArgumentError(QAError, ValueError):
    """An argument of the wrong type or out of range (top_k, min_score, history...)."""


class DocumentError(QAError):
    """A document could not be read: missing, unreadable, not UTF-8, unsupported."""


class UnsupportedFormatError(DocumentError):
    """The file type is not one ``qa`` can index."""


class DocumentNotFoundError(DocumentError):
    """The path does not exist, or is a folder where a file was expected."""


class DocumentUnreadableError(DocumentError):
    """The file exists but cannot be read (permissions, I/O error, too large)."""


class DocumentEncodingError(DocumentError):
    """The file is not valid UTF-8."""


class EmptyDocumentError(DocumentError):
    """The file holds no text (empty or only white space)."""


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


class UploadRefused(QAError):
    """The upload as a whole is over a limit; nothing was indexed."""


class DocumentNotIndexedError(QAError, KeyError):
    """A document id given to remove is not in the index (also a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RetrievalModeError(QAError, ValueError):
    """A retrieval mode that does not exist."""


class GoldFormatError(QAError, ValueError):
    """A gold file line that is not a valid question record."""


class EmptyCorpusError(QAError):
    """There is nothing to index or nothing indexed to search."""


class IndexError_(QAError):
    """Base for index problems (named with a trailing underscore to keep the builtin)."""


class IndexMissingError(IndexError_):
    """No index exists at the given folder."""


class IndexCorruptError(IndexError_):
    """An index file is unreadable or inconsistent with the others."""


class IndexPermissionError(IndexError_):
    """An index file exists but this process may not read (or write) it."""


class IndexStaleError(IndexError_):
    """The index was built with other settings, another model or other documents."""


class ModelError(QAError):
    """A model is missing or is not the one the index or settings expect."""


class PageRenderError(QAError):
    """A cited page cannot be drawn: not a PDF, the PDF is gone or changed, no such page (``qa.pages``)."""


class PackError(QAError):
    """A data pack or a set of weight parts is missing, truncated or damaged (sha256 mismatch)."""


class CheckpointError(QAError):
    """A training checkpoint that cannot be resumed or exported: truncated, or of another model."""


class DocumentFieldError(QAError, ValueError):
    """A ``Document`` field the index could not store and read back unchanged
    (an id that is not a non-empty, printable, relative name; a blank text;
    metadata that is not JSON; locators outside the text). ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Document.{field}: {message}")
        self.field = field


class LimitError(ArgumentError):
    """A request over one of the limits in ``qa.config.LimitsConfig`` (top_k,
    question or history length): refused before any work is done."""


class RequestTimeoutError(QAError):
    """A web request ran past its time budget (``LimitsConfig.web_time_budget_s``)."""


class ServingConfigError(QAError):
    """The app was asked to serve in a way that is unsafe or impossible (a
    non-loopback address without credentials, an unreadable credentials file)."""


class IndexWriteError(IndexError_, OSError):
    """The index folder cannot be written (a read-only file system, no permission, a
    full disk): nothing was changed and the published index still answers. Also an
    ``OSError``, as these failures were before they had a message of their own."""


class IndexBusyError(IndexError_):
    """The index's vectors are held by another process (a Milvus Lite file, which
    serves one process at a time): not corrupt, usable once that process lets go."""
