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


# Rows bootstrapped in one call: bounds the (rows, resamples, n) array the statistics see to ~40 MB at n = 40.
ROWS_PER_CALL = 64
# Values a statistic sees in one vectorised call: scipy's `batch` cuts the resamples (and BCa's n leave-one-out
# samples) into pieces of this many values, so an array stays ~8 MB at any n, not resamples x n (160 MB at 10,000
# mazes) or, for the jackknife, n x n (200 MB at 5,000). The resamples are drawn from one stream either way, so
# every interval is the same number (tests/test_stats.py).
VALUES_PER_CALL = 1_000_000
Statistic = Callable[..., Any]


def batch_for(values_per_resample: int) -> int:
    """scipy.stats.bootstrap's `batch` for resamples of this many values in all (rows x n)."""
    return max(1, VALUES_PER_CALL // max(1, values_per_resample))


def resampled(data: tuple[np.ndarray, ...], statistic: Statistic, method: str, values: int) -> Any:
    """scipy.stats.bootstrap with the house's settings: RESAMPLES resamples, 95%, the fixed SEED, vectorised over the
    last axis, in batches that keep each array near a million values (`values`: how many one resample holds)."""
    return stats.bootstrap(
        data,
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method=method,
        random_state=np.random.default_rng(SEED),
        vectorized=True,
        axis=-1,
        batch=batch_for(values),
    )


def interval(values: np.ndarray, statistic: Statistic) -> list[float] | None:
    """The bootstrap interval of `statistic` over `values`; None with fewer than two values."""
    return intervals(values[np.newaxis], (statistic,))[0][0]


def intervals(rows: np.ndarray, statistics: Sequence[Statistic]) -> list[list[list[float] | None]]:
    """`interval` of each statistic (outer list) for each row (inner list) of a (m, n) array, from one bootstrap.

    scipy draws one (resamples, n) array of indices per call and applies it to every row, and that draw
    depends only on n and the seed, so each row gets exactly the resamples a call of its own would; the
    statistics are evaluated on those same resamples (a vectorised statistic may return several values).
    Batching saves scipy's per-call overhead and, with both the mean and the median asked for, half of the
    resampling. Each interval equals a separate 1-d call's to float64 rounding (numpy's mean sums a row in a
    different order inside a 3-d array: ~1e-16 relative).
    """
    m, n = rows.shape
    out: list[list[list[float] | None]] = [[None] * m for _ in statistics]
    if n < 2:
        return out
    varied = []
    for i, row in enumerate(rows):
        if np.all(row == row[0]):  # every resample is the same: the interval is that value
            for per_stat in out:
                per_stat[i] = [float(row[0]), float(row[0])]
        else:
            varied.append(i)

    def all_of(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([f(x, axis=axis) for f in statistics])

    for start in range(0, len(varied), ROWS_PER_CALL):
        chosen = varied[start : start + ROWS_PER_CALL]
        res = resampled((rows[chosen],), all_of, METHOD, len(chosen) * n)
        low, high = res.confidence_interval.low, res.confidence_interval.high  # (statistics, rows)
        for s, per_stat in enumerate(out):
            for j, i in enumerate(chosen):
                per_stat[i] = [float(low[s, j]), float(high[s, j])]
    return out


def median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """np.median's values (the middle order statistic, or the mean of the two middle ones) from a full sort.

    On the bootstrap's many short rows (resamples × n) np.median's partition and NaN check took 80% of a
    dose-response report's summaries; np.sort is ~3x faster there and gives the same numbers bit for bit
    (tests/test_stats.py). Input with NaN goes to np.median, which propagates it.
    """
    if np.isnan(x).any():
        return np.median(x, axis=axis)
    s = np.moveaxis(np.sort(x, axis=axis), axis, -1)
    mid = s.shape[-1] // 2
    # A copy, not a view: scipy keeps each batch's statistics until the end, and a view would keep the whole
    # sorted batch alive with it (the memory batching saves).
    return s[..., mid].copy() if s.shape[-1] % 2 else (s[..., mid - 1] + s[..., mid]) / 2


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


def proportion(k: int, n: int) -> dict[str, Any]:
    """k of n mazes as a fraction with its 95% Wilson interval (scipy.stats.binomtest); None fraction at n 0."""
    if n == 0:
        return {"k": 0, "n": 0, "fraction": None, "ci": None}
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return {"k": int(k), "n": int(n), "fraction": k / n, "ci": [float(ci.low), float(ci.high)]}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (statsmodels' multipletests), in the same order."""
    if not len(pvalues):
        return []
    from statsmodels.stats.multitest import multipletests  # a heavy import, used by the claims page alone

    return [float(p) for p in multipletests(list(pvalues), alpha=1 - CONFIDENCE, method="holm")[1]]


POWER = 0.8


def min_detectable_effect(values: np.ndarray) -> float | None:
    """The smallest true shift of the mean these n values detect with 80% power in a two-sided one-sample t-test
    at the 5% level (statsmodels' TTestPower), in the values' own units; None below n = 3 or with no spread."""
    n = len(values)
    sd = float(np.std(values, ddof=1)) if n > 1 else 0.0
    if n < 3 or sd == 0.0:
        return None
    from statsmodels.stats.power import TTestPower

    d = TTestPower().solve_power(nobs=n, alpha=1 - CONFIDENCE, power=POWER, alternative="two-sided")
    return float(d) * sd


def two_way_intervals(values: np.ndarray, rows: Sequence[Any], cols: Sequence[Any]) -> tuple[list[float], list[float]]:
    """95% intervals of the mean and the median of a matrix's cells (transfer pairs: source × target mazes),
    resampling its rows and its columns together: a two-way cluster bootstrap, since two pairs that share a
    source maze or a target maze are not independent. Each resample draws the sources and the targets with
    replacement and weighs each cell by how often both of its mazes were drawn; percentile intervals over the
    same RESAMPLES and SEED as every other interval. scipy.stats.bootstrap resamples one axis of independent
    units, so this one resampling is numpy's (multinomial draws, weighted means and weighted medians)."""
    x = np.asarray(values, dtype=np.float64)
    row_ids = {r: i for i, r in enumerate(dict.fromkeys(rows))}
    col_ids = {c: i for i, c in enumerate(dict.fromkeys(cols))}
    ri = np.array([row_ids[r] for r in rows])
    ci = np.array([col_ids[c] for c in cols])
    rng = np.random.default_rng(SEED)
    nr, nc = len(row_ids), len(col_ids)
    row_w = rng.multinomial(nr, np.full(nr, 1 / nr), size=RESAMPLES)  # (resamples, sources)
    col_w = rng.multinomial(nc, np.full(nc, 1 / nc), size=RESAMPLES)
    w = (row_w[:, ri] * col_w[:, ci]).astype(np.float64)  # (resamples, cells)
    total = w.sum(axis=1)
    keep = total > 0  # a resample whose drawn sources and targets share no cell says nothing
    w, total = w[keep], total[keep]
    means = (w * x).sum(axis=1) / total
    order = np.argsort(x)
    cum = np.cumsum(w[:, order], axis=1) / total[:, None]
    medians = x[order][np.argmax(cum >= 0.5, axis=1)]  # the weighted median (lower middle)
    alpha = (1 - CONFIDENCE) / 2 * 100
    return (
        [float(v) for v in np.percentile(means, [alpha, 100 - alpha])],
        [float(v) for v in np.percentile(medians, [alpha, 100 - alpha])],
    )


def bca_intervals(values: np.ndarray) -> tuple[list[float] | None, list[float] | None, str]:
    """95% BCa intervals of the mean and the median (scipy.stats.bootstrap, method="BCa"), for the claims: at the
    20-50 mazes a claim may rest on, the percentile interval under-covers skewed and bimodal per-maze values
    and BCa's bias and skew corrections recover most of it (tests/test_stats.py measures both). Where BCa is
    undefined (every jackknife value equal, as with many mazes at P = 1) that statistic falls back to the
    percentile interval, and the method string says so."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return None, None, "none"
    if np.all(x == x[0]):
        return [float(x[0])] * 2, [float(x[0])] * 2, "all values equal"
    out: list[list[float] | None] = []
    used = []
    for statistic in (np.mean, median):
        found = _bootstrap((x,), statistic, "BCa")
        out.append(found if found is not None else interval(x, statistic))
        used.append("BCa" if found is not None else "percentile")
    return out[0], out[1], f"mean: {used[0]}, median: {used[1]} bootstrap"


def _bootstrap(data: tuple[np.ndarray, ...], statistic: Statistic, method: str) -> list[float] | None:
    """scipy.stats.bootstrap's 95% interval of `statistic` over `data` (one sample, or independent groups each
    resampled on its own) with the house's resamples and seed; None where it is undefined (scipy warns, and
    returns NaN, where BCa is: every jackknife value equal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = resampled(data, statistic, method, sum(len(d) for d in data))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [low, high] if np.isfinite(low) and np.isfinite(high) else None


def difference_intervals(x: np.ndarray, y: np.ndarray) -> tuple[list[float] | None, list[float] | None, str]:
    """95% BCa intervals of mean(x) − mean(y) and median(x) − median(y) for two groups of different mazes
    (scipy.stats.bootstrap with two samples, each resampled on its own: the groups are independent, not paired);
    the percentile interval where BCa is undefined, as `bca_intervals` does."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None, None, "none"
    out: list[list[float] | None] = []
    used = []
    for statistic in (np.mean, median):

        def diff(u: np.ndarray, v: np.ndarray, axis: int = -1, s: Statistic = statistic) -> np.ndarray:
            return s(u, axis=axis) - s(v, axis=axis)

        found, method = _bootstrap((a, b), diff, "BCa"), "BCa"
        if found is None:
            found, method = _bootstrap((a, b), diff, "percentile"), "percentile"
        out.append(found)
        used.append("none" if found is None else method)
    return out[0], out[1], f"two groups resampled apart; mean: {used[0]}, median: {used[1]} bootstrap"


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney U p-value of two independent groups; None where undefined (a group under 2)."""
    if len(x) < 2 or len(y) < 2:
        return None
    p = stats.mannwhitneyu(x, y, alternative="two-sided").pvalue
    return None if not np.isfinite(p) else float(p)


def min_detectable_difference(x: np.ndarray, y: np.ndarray) -> float | None:
    """The smallest true difference of two groups' means that a two-sided two-sample t-test at the 5% level
    detects with 80% power at these sizes (statsmodels' TTestIndPower), in the values' units (pooled sd)."""
    nx, ny = len(x), len(y)
    if nx < 3 or ny < 3:
        return None
    pooled = float(np.sqrt(((nx - 1) * np.var(x, ddof=1) + (ny - 1) * np.var(y, ddof=1)) / (nx + ny - 2)))
    if pooled == 0.0:
        return None
    from statsmodels.stats.power import TTestIndPower

    d = TTestIndPower().solve_power(nobs1=nx, ratio=ny / nx, alpha=1 - CONFIDENCE, power=POWER)
    return float(d) * pooled
