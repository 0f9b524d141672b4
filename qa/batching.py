"""Answering questions that arrive together in one batched pass.

A web app serving many chat clients gets questions at about the same time; one
``QA.ask_batch`` call (one retrieval pass, one reader pass) answers them far
faster than the same questions one after another. ``MicroBatcher.ask`` has the
signature of ``QA.ask`` and blocks like it; behind it one worker thread collects
the questions that arrive within ``ServingConfig.batch_window_s`` (50 ms) of each other (or while
the previous batch is being answered) and answers them with ``ask_batch``.

A bad question never fails the others: when a batch raises, its questions are
answered one by one, so each caller gets its own answer or its own error.

Identical questions (same text, history, top_k and min_score) are read once
while one is queued or being read (a later asker waits for that answer), and
in one batch; and answers are kept per published snapshot and threshold (an LRU
of ``ServingConfig.answer_cache_size``): a question asked again before the index
or the threshold changes is answered from the cache without queueing. Nothing
stale can come out of it: the key holds the snapshot's name, which every
publish changes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import CancelledError, Future
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

    def same(self) -> tuple:
        """Requests with equal ``same()`` get the same answer (read once)."""
        return question_key(self.question, self.history, self.top_k, self.min_score) or ("unique", id(self))


def question_key(question: Any, history: Any, top_k: Any, min_score: Any) -> tuple | None:
    """A hashable key for a well-formed request (None for anything else: it is
    never cached or merged, and ``ask_batch`` gives it its own error)."""
    if not isinstance(question, str):
        return None
    if history is not None:
        if not isinstance(history, (list, tuple)):
            return None
        try:
            history = tuple((t[0], t[1]) for t in history
                            if isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(x, str) for x in t))
        except (TypeError, IndexError):
            return None
    for v in (top_k, min_score):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return None
    return (question.strip(), history or None, top_k, min_score)


class MicroBatcher:
    """``ask`` for many threads at once, answered in batches by one worker.

    ``window_s``: how long the worker waits for more questions after the first
    one of a batch arrives; ``max_batch``: the most questions in one pass.
    """

    def __init__(self, qa: Any, window_s: float | None = None, max_batch: int | None = None,
                 cache_size: int | None = None) -> None:
        from qa.config import ServingConfig

        cfg = getattr(getattr(qa, "settings", None), "serving", None) or ServingConfig()
        self.qa = qa
        self.window_s = cfg.batch_window_s if window_s is None else window_s
        self.max_batch = cfg.max_batch if max_batch is None else max_batch
        self.cache_size = cfg.answer_cache_size if cache_size is None else cache_size
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        #: sizes of the latest batches answered, and of the distinct questions read in each (for
        #: tests and benchmarks); bounded, so a server that runs for weeks does not grow them
        self.batches: deque[int] = deque(maxlen=1024)
        self.reads: deque[int] = deque(maxlen=1024)
        self.cache_hits = 0
        self.merged = 0  # requests answered by another request's read of the same question
        self._inflight: dict[tuple, Future] = {}

    def _cache_key(self, question: Any, history: Any, top_k: Any, min_score: Any) -> tuple | None:
        """(snapshot, threshold, request), or None for a request that is never shared."""
        k = question_key(question, history, top_k, min_score)
        if k is None:
            return None
        try:
            name = self.qa.store.name
            threshold = self.qa.threshold if min_score is None else None
        except Exception:  # noqa: BLE001 - no index yet, or no such attributes: just not cached
            return None
        return None if name is None else (name, threshold) + k

    def _cached(self, key: tuple | None):
        if key is None or self.cache_size <= 0:
            return None
        with self._cache_lock:
            a = self._cache.get(key)
            if a is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
            return a

    def _remember(self, key: tuple | None, answer: Any) -> None:
        if key is None or self.cache_size <= 0:
            return
        with self._cache_lock:
            self._cache[key] = answer
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def ask(self, question: Any, history: Any = None, top_k: Any = None, min_score: Any = None,
            timeout: float | None = None):
        """Like ``QA.ask``: the Answer, or the ``QAError`` it would raise.
        ``timeout``: seconds to wait; then ``TimeoutError``, and the question is
        dropped unless its batch has already started."""
        if not hasattr(self.qa, "ask_batch"):
            return self.qa.ask(question, history=history, top_k=top_k, min_score=min_score)
        key = self._cache_key(question, history, top_k, min_score)
        hit = self._cached(key)
        if hit is not None:
            return hit
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # The same question already queued or being read (by another client): wait for
            # that answer instead of reading it again; a burst that gradio hands over in two
            # parts then costs one read, not two.
            with self._cache_lock:
                leader = self._inflight.get(key) if key is not None else None
                if leader is None:
                    req = _Request(question, history, top_k, min_score)
                    if key is not None:
                        self._inflight[key] = req.future
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if leader is not None:
                try:
                    self.merged += 1
                    return leader.result(left)
                except FutureTimeout:
                    raise TimeoutError(f"no answer within {timeout} s") from None
                except CancelledError:  # its asker gave up before it was read: ask anew
                    continue
            break
        self._ensure_worker()
        self._queue.put(req)
        try:
            answer = req.future.result(left)
        except FutureTimeout:
            req.future.cancel()
            raise TimeoutError(f"no answer within {timeout} s") from None
        finally:
            if key is not None:
                with self._cache_lock:
                    if self._inflight.get(key) is req.future:
                        del self._inflight[key]
        self._remember(key, answer)
        return answer

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
        same: dict[tuple, list[_Request]] = {}
        for r in reqs:
            same.setdefault(r.same(), []).append(r)
        firsts = [group[0] for group in same.values()]  # identical questions are read once
        self.reads.append(len(firsts))
        if len(firsts) > 1:
            try:
                answers = self.qa.ask_batch([r.question for r in firsts], [r.history for r in firsts],
                                            top_k=firsts[0].top_k, min_score=firsts[0].min_score)
            except Exception:  # noqa: BLE001 - one bad question: each is asked alone below and gets its own error
                pass
            except BaseException as e:  # shutting down: no caller may wait forever on its future
                for r in reqs:
                    r.future.set_exception(e)
                raise
            else:
                for group, a in zip(same.values(), answers):
                    for r in group:
                        r.future.set_result(a)
                return
        for group in same.values():
            r = group[0]
            try:
                a = self.qa.ask(r.question, history=r.history, top_k=r.top_k, min_score=r.min_score)
            except BaseException as e:  # noqa: BLE001 - handed to the callers' threads
                for x in group:
                    x.future.set_exception(e)
            else:
                for x in group:
                    x.future.set_result(a)
