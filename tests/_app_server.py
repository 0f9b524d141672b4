"""Serving the web app in-process on a free local port, for test_app and test_browser.

The real-model server is started once per test process and shared (loading the
models and indexing the seeds twice would double the slow tests' time).
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import app  # noqa: E402  (the repository's app.py)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    qa: object
    demo: object
    url: str

    def close(self) -> None:
        self.demo.close()


def serve(qa_instance) -> Served:
    """``app.build_app(qa_instance)`` served on 127.0.0.1 in a background thread."""
    demo = app.build_app(qa_instance)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, max_file_bytes=qa_instance.settings.max_file_bytes,
               prevent_thread_lock=True, quiet=True)
    return Served(qa_instance, demo, f"http://127.0.0.1:{port}/")


_real: Served | None = None
_real_lock = threading.Lock()


def real_server(tmp_path_factory) -> Served:
    """The app over a real ``QA`` (real models) indexing seeds/ into a temporary folder."""
    global _real
    with _real_lock:
        if _real is None:
            from qa.pipeline import QA

            qa_instance = QA(index_dir=tmp_path_factory.mktemp("app-index"), corpus_dir=SEEDS)
            qa_instance.warm_up()
            _real = serve(qa_instance)
            atexit.register(_real.close)
        return _real
