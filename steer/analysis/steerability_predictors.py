"""What predicts a maze's steerability: per predictor Spearman's rho with a paired bootstrap interval and its p, and
a held-out test, the cross-validated R² of a linear model of steerability on the predictor; and whether the
cosine predicts beyond maze size (the held-out R² of {maze size, cosine} minus that of {maze size}, with an
interval).

Held-out R² is pooled over folds: every maze's steerability is predicted by a model fitted without it (scikit-learn
`KFold`, shuffled with the house's seed; one row per maze, so plain folds are group folds), and R² = 1 - SSE / SST
with SST about the mean of all mazes. It is negative when the predictor predicts worse than that mean. The
increment's interval resamples mazes (paired, percentile, the house's settings) with each maze's two held-out
errors fixed: it says how much the increment depends on which mazes were drawn, not on refitting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

from steer.analysis.stats import CONFIDENCE, METHOD, RESAMPLES, SEED

FOLDS = 5
MIN_MAZES = 8  # below this a rank correlation's interval and a five-fold R² say nothing
# The predictors, each one number per maze (per site for the cosine): what it is.
PREDICTORS: dict[str, str] = {
    "cosine": "cosine between the maze's own vector (the same kind's pair on this maze, at the site) and the vector "
    "applied",
    "headroom": "the unpatched target's room to move the claimed way: 1 - P for up, P for down",
    "maze_dim": "inner maze side, in squares",
    "euclid_cheese_top_right": "straight-line distance, cheese to the top-right square",
    "path_cheese_top_right": "steps, cheese to the top-right square",
    "path_ds_cheese": "steps, decision square to cheese",
    "path_ds_top_right": "steps, decision square to the top-right square",
}
BASE, ADDED = "maze_dim", "cosine"  # the increment: {maze_dim, cosine} against {maze_dim}


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(float(x))


def _ranks_corr(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along `axis` (vectorised for the bootstrap): Pearson's r of the ranks."""
    rx, ry = stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=axis) / np.sqrt((rx**2).sum(axis=axis) * (ry**2).sum(axis=axis))


def _paired_interval(data: tuple[np.ndarray, ...], statistic: Any) -> list[float] | None:
    """The house's bootstrap (resamples, level, seed, percentile) of a statistic of paired per-maze arrays."""
    res = stats.bootstrap(
        data, statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE, method=METHOD, paired=True,
        vectorized=True, axis=-1, random_state=np.random.default_rng(SEED),
    )  # fmt: skip
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [low, high] if math.isfinite(low) and math.isfinite(high) else None


def held_out_errors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each maze's squared error when predicted by a linear model fitted on the other folds (x: (n, k))."""
    folds = KFold(n_splits=min(FOLDS, len(y)), shuffle=True, random_state=SEED)
    pred = np.empty_like(y)
    for train, test in folds.split(x):
        pred[test] = LinearRegression().fit(x[train], y[train]).predict(x[test])
    return (y - pred) ** 2


def r2_of(errors: np.ndarray, y: np.ndarray) -> float | None:
    sst = float(((y - y.mean()) ** 2).sum())
    return None if sst == 0 else 1.0 - float(errors.sum()) / sst


def rank_test(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Spearman's rho, its interval and two-sided p, and the held-out R² of y on x alone."""
    out: dict[str, Any] = {"n": len(y), "rho": None, "rho_ci": None, "p": None, "cv_r2": None}
    if len(y) < MIN_MAZES or np.all(x == x[0]) or np.all(y == y[0]):
        return out
    test = stats.spearmanr(x, y)
    out["rho"], out["p"] = float(test.statistic), float(test.pvalue)
    out["rho_ci"] = _paired_interval((x, y), _ranks_corr)
    out["cv_r2"] = r2_of(held_out_errors(x[:, None], y), y)
    return out


def as_record(test: dict[str, Any]) -> dict[str, Any]:
    """A rank test with its rho as a {value, ci, n} record too (what a batch's `reported` claim reads)."""
    return {**test, "value": test["rho"], "ci": test["rho_ci"], "interval": "95% paired percentile bootstrap"}


def increment(base: np.ndarray, added: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Held-out R² of y on {base, added} minus on {base}, with its interval over mazes, as a {value, ci, n} record
    (what a batch's `reported` claim reads) and both R²s."""
    out: dict[str, Any] = {"value": None, "ci": None, "n": len(y), "r2_base": None, "r2_both": None,
                           "interval": "95% percentile bootstrap over mazes, held-out errors fixed"}  # fmt: skip
    if len(y) < MIN_MAZES or np.all(y == y[0]):
        return out
    if np.allclose(added, added[0], atol=1e-6):
        # A constant predictor (the cosine of each maze's own vector with itself) can add nothing: undefined, not
        # a measured zero a reader would take for evidence.
        out["why"] = "the added predictor is constant over these mazes"
        return out
    e_base = held_out_errors(base[:, None], y)
    e_both = held_out_errors(np.column_stack([base, added]), y)
    out["r2_base"], out["r2_both"] = r2_of(e_base, y), r2_of(e_both, y)
    out["value"] = float((e_base.sum() - e_both.sum()) / ((y - y.mean()) ** 2).sum())

    def gain(a: np.ndarray, b: np.ndarray, t: np.ndarray, axis: int = -1) -> np.ndarray:
        sst = ((t - t.mean(axis=axis, keepdims=True)) ** 2).sum(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (a.sum(axis=axis) - b.sum(axis=axis)) / sst

    out["ci"] = _paired_interval((e_base, e_both, y), gain)
    return out


def predictor_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Over one site's mazes (rows with `steerability` and every predictor): each predictor's rank test, the best
    by |rho| among those with an interval, and the cosine's increment beyond maze size."""
    tests: dict[str, Any] = {}
    for name in PREDICTORS:
        both = [(r[name], r["steerability"]) for r in rows if _finite(r.get(name)) and _finite(r["steerability"])]
        x, y = (np.array([b[i] for b in both], dtype=np.float64) for i in (0, 1))
        tests[name] = as_record(rank_test(x, y))
    ranked = [k for k in tests if tests[k]["rho"] is not None]
    best = max(ranked, key=lambda k: abs(tests[k]["rho"]), default=None)
    trio = [
        (r[BASE], r[ADDED], r["steerability"])
        for r in rows
        if _finite(r.get(BASE)) and _finite(r.get(ADDED)) and _finite(r["steerability"])
    ]
    base, added, y = (np.array([t[i] for t in trio], dtype=np.float64) for i in range(3))
    return {"tests": tests, "best": best, "cosine_beyond_size": increment(base, added, y)}


__all__ = [
    "ADDED",
    "BASE",
    "FOLDS",
    "MIN_MAZES",
    "PREDICTORS",
    "as_record",
    "held_out_errors",
    "increment",
    "predictor_summary",
    "r2_of",
    "rank_test",
]
