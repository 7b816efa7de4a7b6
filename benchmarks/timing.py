"""The one way the benchmarks time a workload: the median of several runs after a warm-up run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
