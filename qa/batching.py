"""Answering questions that arrive together in one batched pass.

A web app serving many chat clients gets questions at about the same time; one
``QA.ask_batch`` call (one retrieval pass, one reader pass) answers them far
faster than the same questions one after another. ``MicroBatcher.ask`` has the
signature of ``QA.ask`` and blocks like it; behind it one worker thread collects
the questions that arrive within a few milliseconds of each other (or while the
previous batch is being answered) and answers them with ``ask_batch``.

A bad question never fails the others: when a batch raises, its questions are
answered one by one, so each caller gets its own answer or its own error.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Request:
    question: Any
    history: Any
    top_k: Any
    min_score: Any
    future: Future = field(default_factory=Future)

    def key(self) -> tuple:
        # ask_batch takes one top_k and one min_score for the whole batch
        try:
            hash((self.top_k, self.min_score))
            return (type(self.top_k), self.top_k, type(self.min_score), self.min_score)
        except TypeError:
            return ("unhashable", id(self))


class MicroBatcher:
    """``ask`` for many threads at once, answered in batches by one worker.

    ``window_s``: how long the worker waits for more questions after the first
    one of a batch arrives; ``max_batch``: the most questions in one pass.
    """

    def __init__(self, qa: Any, window_s: float = 0.005, max_batch: int = 32) -> None:
        self.qa = qa
        self.window_s = window_s
        self.max_batch = max_batch
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        #: sizes of the latest batches answered (for tests and benchmarks); bounded,
        #: so a server that runs for weeks does not grow it
        self.batches: deque[int] = deque(maxlen=1024)

    def ask(self, question: Any, history: Any = None, top_k: Any = None, min_score: Any = None,
            timeout: float | None = None):
        """Like ``QA.ask``: the Answer, or the ``QAError`` it would raise.
        ``timeout``: seconds to wait; then ``TimeoutError``, and the question is
        dropped unless its batch has already started."""
        if not hasattr(self.qa, "ask_batch"):
            return self.qa.ask(question, history=history, top_k=top_k, min_score=min_score)
        self._ensure_worker()
        req = _Request(question, history, top_k, min_score)
        self._queue.put(req)
        try:
            return req.future.result(timeout)
        except FutureTimeout:
            req.future.cancel()
            raise TimeoutError(f"no answer within {timeout} s") from None

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="qa-batcher", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.window_s
            stop = False
            while len(batch) < self.max_batch:
                # Whatever is already waiting joins at once; then wait out the window.
                timeout = deadline - time.monotonic()
                try:
                    req = self._queue.get(timeout=max(timeout, 0)) if timeout > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if req is None:
                    stop = True
                    break
                batch.append(req)
            groups: dict[tuple, list[_Request]] = {}
            for r in batch:
                groups.setdefault(r.key(), []).append(r)
            for reqs in groups.values():
                self._answer(reqs)
            if stop:
                return

    def _answer(self, reqs: list[_Request]) -> None:
        # A caller that gave up (its time budget ran out) is not answered at all.
        reqs = [r for r in reqs if r.future.set_running_or_notify_cancel()]
        if not reqs:
            return
        self.batches.append(len(reqs))
        if len(reqs) > 1:
            try:
                answers = self.qa.ask_batch([r.question for r in reqs], [r.history for r in reqs],
                                            top_k=reqs[0].top_k, min_score=reqs[0].min_score)
            except Exception:  # noqa: BLE001 - one bad question: each is asked alone below and gets its own error
                pass
            except BaseException as e:  # shutting down: no caller may wait forever on its future
                for r in reqs:
                    r.future.set_exception(e)
                raise
            else:
                for r, a in zip(reqs, answers):
                    r.future.set_result(a)
                return
        for r in reqs:
            try:
                r.future.set_result(self.qa.ask(r.question, history=r.history, top_k=r.top_k,
                                                min_score=r.min_score))
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                r.future.set_exception(e)
