"""Argument types shared by the command lines (``qa``, ``qa eval``, ``app.py``).

A bound checked at parse time makes ``--limit 0`` or ``--min-score 2`` a usage
error instead of a silently odd run (``--limit 0`` used to mean every question,
``--limit -1`` all but the last, ``--batch-size -1`` no answers at all,
``--concurrency 0`` a server that never answered)."""

from __future__ import annotations

import argparse
from typing import Callable, TypeVar

T = TypeVar("T")


def number(cast: Callable[[str], T], kind: str, ok: Callable[[T], bool], bounds: str) -> Callable[[str], T]:
    """An argparse type: ``cast`` the text, then check it with ``ok``."""
    def parse(value: str) -> T:
        try:
            x = cast(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not {kind}") from None
        if not ok(x):
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return x
    return parse


positive_int = number(int, "a whole number", lambda n: n >= 1, "at least 1")
probability = number(float, "a number", lambda x: 0.0 <= x <= 1.0, "a probability between 0 and 1")
