"""Intervals over mazes and paired tests, from scipy.stats (nothing hand-rolled).

Every summary number carries n and a 95% bootstrap interval over mazes (percentile bootstrap, a fixed number
of resamples, a fixed seed recorded in each report). A patched − original change carries the interval of
its mean and median and a two-sided Wilcoxon signed-rank p-value. Reproduce any of them from the per-maze
values in the same metrics.json:

    scipy.stats.bootstrap((values,), np.mean, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                          method=METHOD, random_state=np.random.default_rng(SEED))
    scipy.stats.wilcoxon(patched, original)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

RESAMPLES = 2000
CONFIDENCE = 0.95
METHOD = "percentile"  # BCa is undefined on the many all-equal samples steer sees (a policy at P = 1)
SEED = 20230321


def settings() -> dict[str, Any]:
    """What a report records so its intervals and p-values can be recomputed."""
    return {
        "bootstrap": {
            "method": METHOD,
            "resamples": RESAMPLES,
            "confidence": CONFIDENCE,
            "seed": SEED,
            "over": "mazes",
        },
        "paired_test": "scipy.stats.wilcoxon(patched, original), two-sided, zero_method='wilcox'",
    }


def interval(values: np.ndarray, statistic: Callable[..., Any]) -> list[float] | None:
    """The bootstrap interval of `statistic` over `values`; None with fewer than two values."""
    if len(values) < 2:
        return None
    if np.all(values == values[0]):  # every resample is the same: the interval is that value
        return [float(values[0]), float(values[0])]
    res = stats.bootstrap(
        (values,),
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method=METHOD,
        random_state=np.random.default_rng(SEED),
        vectorized=True,
        axis=-1,
    )
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def wilcoxon_p(patched: np.ndarray, original: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of patched vs original; None where it is undefined (all equal)."""
    if len(patched) < 2 or np.all(patched == original):
        return None
    with warnings.catch_warnings():  # scipy warns about small samples and ties; the p-value says enough
        warnings.simplefilter("ignore")
        p = stats.wilcoxon(patched, original).pvalue
    return None if not np.isfinite(p) else float(p)


def present(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None], dtype=np.float64)


def paired_values(original: Sequence[float | None], patched: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """The mazes where both sides are defined, as two aligned arrays."""
    both = [(o, p) for o, p in zip(original, patched, strict=True) if o is not None and p is not None]
    return (np.array([o for o, _ in both], dtype=np.float64), np.array([p for _, p in both], dtype=np.float64))
