"""Linear probes from activations to maze features, cross-validated over held-out mazes.

A probe is scikit-learn's ridge regression (`RidgeCV`, continuous features, scored by R²) or logistic
regression (`RidgeClassifierCV`, categorical features, scored by accuracy) on standardised activations.
Folds are `GroupKFold` by maze seed: every row of a maze (all its mouse squares) is in the same fold, so a
probe is always scored on mazes it never saw, never on other squares of a maze it was fitted on.

The interval is a percentile bootstrap over mazes (`steer.analysis.stats` settings) of the pooled out-of-fold score:
each maze contributes its squared errors and its squared deviations from the mean (R² = 1 − ΣSSE / ΣSST), or
its correct and total counts (accuracy), and mazes are resampled whole.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats as sstats

from steer.analysis.stats import CONFIDENCE, METHOD, RESAMPLES, SEED

ALPHAS = np.logspace(-1, 6, 15)  # activations have thousands of dims and few mazes: strong ridge is often best
SHUFFLE_SEED = 0


# scikit-learn is imported where a probe is fitted: every worker process imports the study registry, and
# scikit-learn alone took 0.4 s of a worker's start.


def _model(kind: str) -> Any:
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "continuous":
        # RidgeCV's own alpha choice is efficient leave-one-row-out; it only picks alpha, the score is GroupKFold's.
        return make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    # A ridge classifier rather than LogisticRegressionCV: on 200 mazes x 16,384 dims the logistic version took
    # minutes per site (hundreds of lbfgs fits over its C grid); this one picks alpha by leave-one-out in one
    # eigendecomposition, and a linear separator is what a probe asks for either way.
    return make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=ALPHAS))


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, folds: int) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GroupKFold

    """Predictions for every row from a probe fitted on the other folds' mazes."""
    pred = np.empty_like(y)
    with warnings.catch_warnings():  # a probe that converges slowly still scores; the score says how well
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
            if kind == "categorical" and len(np.unique(y[train])) < 2:
                pred[test] = y[train][0]  # one class in training: the probe can only predict it
                continue
            pred[test] = _model(kind).fit(x[train], y[train]).predict(x[test])
    return pred


def _per_maze(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Per maze, the score's numerator and denominator terms: (SSE, SST) for R², (wrong, rows) for accuracy."""
    seeds = np.unique(groups)
    if kind == "continuous":
        err, dev = (y - pred) ** 2, (y - y.mean()) ** 2
    else:
        err, dev = (y != pred).astype(float), np.ones_like(y, dtype=float)
    return (np.array([err[groups == s].sum() for s in seeds]), np.array([dev[groups == s].sum() for s in seeds]))


def _score(a: np.ndarray, b: np.ndarray, axis: int = -1) -> Any:
    return 1.0 - a.sum(axis=axis) / b.sum(axis=axis)


def score_interval(a: np.ndarray, b: np.ndarray) -> list[float] | None:
    """Bootstrap interval over mazes of 1 − Σa / Σb (mazes resampled whole, a and b paired)."""
    if len(a) < 2:
        return None
    res = sstats.bootstrap(
        (a, b),
        _score,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method=METHOD,
        random_state=np.random.default_rng(SEED),
    )
    low, high = res.confidence_interval.low, res.confidence_interval.high
    return None if not (np.isfinite(low) and np.isfinite(high)) else [float(low), float(high)]


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, folds: int) -> dict[str, Any]:
    """One probe, scored on held-out mazes, beside the same probe on the feature shuffled across mazes.

    Rows where the feature is NaN (undefined there) are left out. Returns `{"skipped": reason}` when it
    cannot be scored: fewer than two mazes, or a feature with one value only.
    """
    keep = ~np.isnan(y)
    x, y, groups = x[keep], y[keep], groups[keep]
    mazes = len(np.unique(groups))
    if mazes < 2:
        return {"skipped": f"{mazes} maze(s) with this feature defined; a held-out score needs 2 or more"}
    if len(np.unique(y)) < 2:
        return {"skipped": f"the feature is {y[0]:g} on every row; there is nothing to predict"}
    k = min(folds, mazes)
    metric = "r2" if kind == "continuous" else "accuracy"
    pred = out_of_fold(x, y, groups, kind, k)
    a, b = _per_maze(y, pred, groups, kind)
    # The control: the feature permuted across rows, which cuts any link to the activations; what the probe
    # scores on it is what it finds in noise with this many rows and dimensions.
    shuffled = np.random.default_rng(SHUFFLE_SEED).permutation(y)
    ca, cb = _per_maze(shuffled, out_of_fold(x, shuffled, groups, kind, k), groups, kind)
    out: dict[str, Any] = {
        "metric": metric,
        "score": float(_score(a, b)),
        "ci": score_interval(a, b),
        "fold_scores": _fold_scores(y, pred, groups, kind, k),
        "shuffled": {"score": float(_score(ca, cb)), "ci": score_interval(ca, cb)},
        "rows": len(y),
        "mazes": int(mazes),
        "folds": k,
    }
    if kind == "categorical":
        out["chance"] = float(np.max(np.unique(y, return_counts=True)[1]) / len(y))
    return out


def _fold_scores(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, kind: str, k: int) -> list[float]:
    from sklearn.model_selection import GroupKFold

    """Each held-out fold's own score (R² against that fold's mean, or accuracy)."""
    scores = []
    for _, test in GroupKFold(n_splits=k).split(y, y, groups):
        yt, pt = y[test], pred[test]
        if kind == "continuous":
            sst = ((yt - yt.mean()) ** 2).sum()
            scores.append(float(1 - ((yt - pt) ** 2).sum() / sst) if sst > 0 else float("nan"))
        else:
            scores.append(float((yt == pt).mean()))
    return scores


def channel_correlations(x: np.ndarray, y: np.ndarray) -> list[float | None]:
    """Pearson r of each channel's spatial mean (each unit, for a flat site) with the feature; None if constant."""
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    means = x.reshape(len(x), x.shape[1], -1).mean(axis=-1) if x.ndim > 2 else x
    out: list[float | None] = []
    for c in range(means.shape[1]):
        col = means[:, c]
        if np.ptp(col) == 0 or np.ptp(y) == 0:
            out.append(None)
        else:
            out.append(float(np.corrcoef(col, y)[0, 1]))
    return out
