"""Which maze features decide whether the agent goes to the cheese: regressions on exact per-maze outcomes.

The posts (Turner et al., Mini et al.) sampled one episode per maze, kept the mazes with a decision square, and
fitted L1-regularised logistic regressions of "got the cheese" on standardised maze features. steer knows each
maze's exact P(reach the cheese within 500 steps) from its Markov chain, so it fits two targets:

- **binarised**, like the posts: `gets_cheese = P(reach the cheese) >= 0.5` (the maze's majority outcome), with
  scikit-learn's `LogisticRegressionCV` (L1, liblinear; its C chosen by inner 5-fold cross-validation), scored by
  out-of-fold accuracy against always predicting the majority class;
- **noise-free**: a fractional logit (a binomial GLM with logit link on the probability itself; statsmodels,
  robust HC0 errors), which uses every maze's exact probability instead of a coin flip or a threshold.

Coefficients are of standardised features. Their intervals are percentile bootstraps over mazes (scipy), each
resample refitted at the C chosen on all mazes; sign stability refits on random halves. VIFs are statsmodels'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from steer.analysis.stats import bca_intervals

# Mini et al.'s three-feature model (its coefficients -1.405, -0.577, -0.516, intercept 1.355), in that order.
POST_THREE = ("euclid_cheese_top_right", "path_ds_cheese", "euclid_ds_cheese")
# The earlier post's four features (coefficients -0.623, -1.084, -2.786, +1.326 in this order).
POST_FOUR = ("euclid_ds_cheese", "path_ds_cheese", "euclid_cheese_top_right", "euclid_ds_region")
POST_THREE_COEFFS = (-1.405, -0.577, -0.516)
POST_FOUR_COEFFS = (-0.623, -1.084, -2.786, 1.326)
# The features the analysis uses (DECISION_FEATURES less the maze's own flags and the region index).
ANALYSED = (
    "euclid_ds_cheese",
    "path_ds_cheese",
    "euclid_ds_top_right",
    "path_ds_top_right",
    "euclid_ds_region",
    "path_ds_region",
    "euclid_cheese_top_right",
    "path_cheese_top_right",
    "euclid_cheese_region",
    "path_cheese_region",
    "euclid_start_cheese",
    "path_start_cheese",
    "maze_dim",
)
THRESHOLD = 0.5
OUTER_FOLDS = 5
INNER_FOLDS = 5
CS = 8  # C values LogisticRegressionCV tries (log-spaced, scikit-learn's default grid)
# liblinear stops at convergence; its default cap (100) was hit on near-separable resamples of small samples. A fit
# that converged before it is unchanged by a higher cap.
MAX_ITER = 1000
# liblinear visits the mazes in a random order (coordinate descent); unseeded it draws that order from numpy's
# global state, and a rerun of 10,000 mazes moved the coefficients in the 4th digit. Seeded, a run, its rerun and
# the same run through Ray give the same bytes (tests/test_behaviour_stats.py).
SOLVER_SEED = 0


def _accuracy(estimator: Any, x: np.ndarray, y: np.ndarray) -> float:
    """The share of mazes predicted right: scikit-learn's "accuracy" scorer's number without its per-call checks,
    which took two thirds of the regressions' time (4,000 inner-fold scores per analysis)."""
    return float(np.mean(estimator.predict(x) == y))


def _model() -> Any:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # l1_ratio 1 is the L1 penalty (scikit-learn 1.8 on; `penalty=` is deprecated there).
    return make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=CS,
            cv=INNER_FOLDS,
            l1_ratios=(1.0,),
            solver="liblinear",
            max_iter=MAX_ITER,
            scoring=_accuracy,
            use_legacy_attributes=False,
            random_state=SOLVER_SEED,
        ),
    )


def table(rows: Sequence[Mapping[str, Any]], features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(X, p): the features and P(reach the cheese) of the mazes with a decision square and every feature."""
    keep = [
        r
        for r in rows
        if r.get("has_decision_square") == 1.0
        and r.get("p_reach_cheese") is not None
        and all(np.isfinite(float(r[f])) for f in features)
    ]
    x = np.array([[float(r[f]) for f in features] for r in keep], dtype=np.float64).reshape(len(keep), len(features))
    p = np.array([float(r["p_reach_cheese"]) for r in keep], dtype=np.float64)
    return x, p


def _accuracy_row(y: np.ndarray, predicted: np.ndarray, baseline: np.ndarray) -> dict[str, Any]:
    correct, base_correct = predicted == y, baseline == y
    n = len(y)
    low, high = proportion_confint(int(correct.sum()), n, alpha=0.05, method="wilson")
    # McNemar's exact test on the mazes where the model and the baseline disagree about being right.
    both = np.array(
        [
            [np.sum(correct & base_correct), np.sum(correct & ~base_correct)],
            [np.sum(~correct & base_correct), np.sum(~correct & ~base_correct)],
        ]
    )
    gain = correct.astype(np.float64) - base_correct
    # The gain over the baseline, paired per maze: the claims' bootstrap over mazes of the mean difference.
    gain_ci, _, method = bca_intervals(gain)
    return {
        "n": n,
        "gain": {
            "value": float(gain.mean()) if n else None,
            "ci": gain_ci,
            "interval": f"bootstrap over mazes of the paired difference ({method})",
        },
        "accuracy": float(correct.mean()) if n else None,
        "accuracy_ci": [float(low), float(high)] if n else None,
        "baseline": float(base_correct.mean()) if n else None,
        "mcnemar_p": float(mcnemar(both, exact=True).pvalue) if n else None,
    }


def held_out_accuracy(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Out-of-fold accuracy of the L1 logistic model (stratified folds), with a Wilson interval, beside always
    predicting the training folds' majority class, and McNemar's exact test of the two."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=seed)
    predicted = cross_val_predict(_model(), x, y, cv=folds)
    baseline = np.empty_like(y)
    for train, test in folds.split(x, y):
        baseline[test] = int(y[train].mean() >= 0.5)
    return _accuracy_row(y, predicted, baseline)


def _fit_coefs(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    fit = LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear", max_iter=MAX_ITER, random_state=SOLVER_SEED)
    fit = fit.fit(z, y)
    return np.concatenate([fit.coef_[0], fit.intercept_])


def coefficients(
    x: np.ndarray, y: np.ndarray, features: Sequence[str], resamples: int = 200, halves: int = 100, seed: int = 0
) -> dict[str, Any]:
    """Standardised L1 coefficients on all mazes, percentile bootstrap intervals over mazes, and the share of
    random halves on which each keeps its sign."""
    model = _model().fit(x, y)
    c = float(np.atleast_1d(model[-1].C_)[0])
    full = _fit_coefs(x, y, c)
    index = np.arange(len(y))

    def statistic(i: np.ndarray) -> np.ndarray:
        i = i.astype(int)
        if len(np.unique(y[i])) < 2:  # a resample of one class fits nothing: no coefficients from it
            return np.full(len(full), np.nan)
        return _fit_coefs(x[i], y[i], c)

    boot = stats.bootstrap(
        (index,),
        statistic,
        vectorized=False,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    rng = np.random.default_rng(seed + 1)
    same = np.zeros(len(full))
    for _ in range(halves):
        half = rng.permutation(len(y))[: len(y) // 2]
        if len(np.unique(y[half])) == 2:
            same += np.sign(_fit_coefs(x[half], y[half], c)) == np.sign(full)
    names = [*features, "intercept"]
    return {
        "C": c,
        "resamples": resamples,
        "halves": halves,
        "coefficients": {
            name: {
                "value": float(full[k]),
                "ci": [float(boot.confidence_interval.low[k]), float(boot.confidence_interval.high[k])],
                "same_sign_share": float(same[k] / halves),
                "interval": f"percentile bootstrap over mazes ({resamples} resamples, C fixed)",
            }
            for k, name in enumerate(names)
        },
    }


def vifs(x: np.ndarray, features: Sequence[str]) -> dict[str, float]:
    """Variance inflation factors (statsmodels), each feature against the others and a constant."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor
    from statsmodels.tools import add_constant

    design = add_constant(x, has_constant="add")
    return {f: float(variance_inflation_factor(design, k + 1)) for k, f in enumerate(features)}


def fractional_logit(x: np.ndarray, p: np.ndarray, features: Sequence[str]) -> dict[str, Any]:
    """A binomial GLM with logit link on the exact probabilities (standardised features, HC0 errors)."""
    import statsmodels.api as sm

    z = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    fit = sm.GLM(p, sm.add_constant(z, has_constant="add"), family=sm.families.Binomial()).fit(cov_type="HC0")
    ci = fit.conf_int(alpha=0.05)
    names = ["intercept", *features]
    return {
        name: {
            "value": float(fit.params[k]),
            "ci": [float(ci[k][0]), float(ci[k][1])],
            "p": float(fit.pvalues[k]),
            "interval": "Wald with robust (HC0) errors",
        }
        for k, name in enumerate(names)
    }


def analyse(rows: Sequence[Mapping[str, Any]], seed: int = 0, resamples: int = 200) -> dict[str, Any]:
    """Every regression of the module docstring on the mazes with a decision square."""
    features = list(ANALYSED)
    x, p = table(rows, features)
    y = (p >= THRESHOLD).astype(int)
    out: dict[str, Any] = {
        "mazes": len(rows),
        "with_decision_square": len(y),
        "target": f"P(reach the cheese within 500 steps) >= {THRESHOLD}",
        "share_gets_cheese": float(y.mean()) if len(y) else None,
    }
    if len(y) < 4 * OUTER_FOLDS or len(np.unique(y)) < 2 or min(np.bincount(y)) < OUTER_FOLDS:
        out["skipped"] = (
            f"{len(y)} mazes with a decision square ({int(y.sum())} get the cheese): too few of one outcome for "
            f"{OUTER_FOLDS}-fold cross-validation; run more mazes."
        )
        return out
    col = {f: k for k, f in enumerate(features)}

    def sub(names: Sequence[str]) -> np.ndarray:
        return x[:, [col[n] for n in names]]

    out["single"] = {f: held_out_accuracy(sub([f]), y, seed) for f in features}
    out["all"] = held_out_accuracy(x, y, seed)
    out["three"] = {"features": list(POST_THREE), **held_out_accuracy(sub(POST_THREE), y, seed)}
    out["four"] = {"features": list(POST_FOUR), **held_out_accuracy(sub(POST_FOUR), y, seed)}
    out["drop_one"] = {f: held_out_accuracy(sub([g for g in POST_FOUR if g != f]), y, seed) for f in POST_FOUR}
    out["coefficients_three"] = coefficients(sub(POST_THREE), y, POST_THREE, resamples, seed=seed)
    out["coefficients_four"] = coefficients(sub(POST_FOUR), y, POST_FOUR, resamples, seed=seed)
    out["vif_four"] = vifs(sub(POST_FOUR), POST_FOUR)
    out["correlations"] = {"features": features, "matrix": np.round(np.corrcoef(x, rowvar=False), 4).tolist()}
    out["fractional_logit_three"] = fractional_logit(sub(POST_THREE), p, POST_THREE)
    out["fractional_logit_four"] = fractional_logit(sub(POST_FOUR), p, POST_FOUR)
    return out


def outside_top_right(rows: Sequence[Mapping[str, Any]], largest: int = 15) -> list[dict[str, Any]]:
    """P(gets the cheese | decision square, cheese outside the inner maze's top-right n x n squares) per n, with a
    Wilson interval (the posts' curve across models), and the mean exact P(reach the cheese) there."""
    out = []
    for n in range(1, largest + 1):
        chosen = [
            float(r["p_reach_cheese"])
            for r in rows
            if r.get("has_decision_square") == 1.0
            and r.get("p_reach_cheese") is not None
            and float(r["cheese_top_right_n"]) > n
        ]
        if not chosen:
            break
        gets = int(sum(v >= THRESHOLD for v in chosen))
        low, high = proportion_confint(gets, len(chosen), alpha=0.05, method="wilson")
        out.append(
            {
                "n": n,
                "mazes": len(chosen),
                "share_gets_cheese": gets / len(chosen),
                "share_ci": [float(low), float(high)],
                "mean_p_reach_cheese": float(np.mean(chosen)),
            }
        )
    return out
