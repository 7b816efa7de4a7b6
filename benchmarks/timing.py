"""The one way the benchmarks time a workload: the median of several runs after a warm-up run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def timed(fn: Callable[[], Any], repeats: int, warm_up: bool = True) -> float:
    """Median wall seconds of `repeats` calls; the warm-up call takes first-call allocations and oneDNN kernel
    selection out of the figure."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Phases:
    """Adds the wall time of each `with phases(name):` block to a dict (or does nothing without one)."""

    def __init__(self, into: dict[str, float] | None = None) -> None:
        self.into = into

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.into is not None:
                self.into[name] = self.into.get(name, 0.0) + time.perf_counter() - start
