"""Questions first: bulk work (embedding an upload) steps aside while a question is answered.

On a 2-core machine an upload's embedding and a question's reading each want both cores; run side by
side, they oversubscribe the cores and a question took 3.5x as long as without the upload
(docs/reliability.md). The embedder already lets a question's own query embedding go before the next
batch of an upload, but the reader, which is most of a question's time, ran against the upload's
batches. So every question marks itself as in flight here, and bulk work waits between its batches
until no question is (at most ``max_wait_s`` per batch, so a steady stream of questions slows an
upload down but never stops it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator


class Foreground:
    """Counts questions in flight; ``yield_to_questions`` is what bulk work calls between batches."""

    def __init__(self, max_wait_s: float = 2.0) -> None:
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._active = 0
        self._local = threading.local()  # a thread inside a question never waits for itself

    @property
    def active(self) -> int:
        with self._cond:
            return self._active

    @contextlib.contextmanager
    def question(self) -> Iterator[None]:
        with self._cond:
            self._active += 1
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    def yield_to_questions(self) -> float:
        """Wait until no question is in flight, or ``max_wait_s``; returns the seconds waited.

        Called from inside a question (a large ``ask_batch`` embeds in several batches) it returns at
        once: that work is the foreground."""
        if getattr(self._local, "depth", 0):
            return 0.0
        t0 = time.perf_counter()
        deadline = t0 + self.max_wait_s
        with self._cond:
            while self._active:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
        return time.perf_counter() - t0
