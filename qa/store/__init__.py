"""Storage: the snapshot store (``snapshot``), the index folder's files
(``files``: pointer, checksums, lock, clean-up) and the vector and lexical index
interfaces (``base``) with their backends (``backends``)."""

from qa.store.files import POINTER, clean_index_dir, current_name, writer_lock
from qa.store.snapshot import IndexStore, Manifest

__all__ = ["POINTER", "IndexStore", "Manifest", "clean_index_dir", "current_name", "writer_lock"]
