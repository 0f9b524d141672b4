"""Questions first: bulk work (embedding an upload) steps aside while a question is answered.

On a 2-core machine an upload's embedding and a question's reading each want both cores; run side by
side, they oversubscribe the cores and a question took 3.5x as long as without the upload
(docs/reliability.md). The embedder already lets a question's own query embedding go before the next
batch of an upload, but the reader, which is most of a question's time, ran against the upload's
batches. So every question marks itself as in flight here, and bulk work waits between its batches
until no question is (at most ``max_wait_s`` per batch, so a steady stream of questions slows an
upload down but never stops it).

Two measured refinements (20 chat clients during a 5 MB upload, docs/reliability.md): chat clients
send their next question a few milliseconds after the last answer, so "no question in flight" lasted
just long enough for the upload to start a whole batch of 64 chunks (~1.8 s on 2 fp32 cores) before
every round. Hence a ``grace_s`` after the last question during which bulk work still waits, and
``busy()``, which tells bulk work to take small steps while questions are about, so that a question
arriving mid-step waits for a few chunks, not for 64.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator


class Foreground:
    """Counts questions in flight; ``yield_to_questions`` is what bulk work calls between batches."""

    def __init__(self, max_wait_s: float = 2.0, grace_s: float = 0.25) -> None:
        if max_wait_s < 0 or grace_s < 0:
            raise ValueError("max_wait_s and grace_s must be >= 0")
        self.max_wait_s = max_wait_s
        self.grace_s = grace_s
        self._cond = threading.Condition()
        self._active = 0
        self._last_end = -float("inf")
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
                self._last_end = time.perf_counter()
                if not self._active:
                    self._cond.notify_all()

    def busy(self) -> bool:
        """A question is in flight or ended less than ``grace_s`` ago (never, asked from inside a question:
        a large ``ask_batch`` is the foreground and keeps its full batches)."""
        if getattr(self._local, "depth", 0):
            return False
        with self._cond:
            return self._busy_locked(time.perf_counter())

    def _busy_locked(self, now: float) -> bool:
        return bool(self._active) or now - self._last_end < self.grace_s

    def yield_to_questions(self) -> float:
        """Wait until no question is in flight or ended within ``grace_s``, or ``max_wait_s``; returns
        the seconds waited.

        Called from inside a question (a large ``ask_batch`` embeds in several batches) it returns at
        once: that work is the foreground."""
        if getattr(self._local, "depth", 0):
            return 0.0
        t0 = time.perf_counter()
        deadline = t0 + self.max_wait_s
        with self._cond:
            while True:
                now = time.perf_counter()
                if not self._busy_locked(now) or now >= deadline:
                    break
                # in flight: woken when the last one ends; in the grace period: when it runs out
                quiet_at = self._last_end + self.grace_s if not self._active else deadline
                self._cond.wait(max(1e-3, min(deadline, quiet_at) - now))
        return time.perf_counter() - t0
