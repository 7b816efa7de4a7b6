"""Intervals and paired tests in a real report equal scipy.stats on the per-maze values of the same report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from cli.main import app
from steer.analysis.metrics import describe, describe_change, describe_many
from steer.analysis.stats import median
from steer.analysis.stats import settings as stats_settings


def _scipy_ci(values: np.ndarray, statistic, settings: dict) -> list[float]:
    res = stats.bootstrap(
        (values,),
        statistic,
        n_resamples=settings["resamples"],
        confidence_level=settings["confidence"],
        method=settings["method"],
        random_state=np.random.default_rng(settings["seed"]),
    )
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("stats")
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump({"seeds": {"from": 0, "to": 19}, "vector": {"kind": "cheese"}, "coeff": -1}))
    result = CliRunner().invoke(app, ["apply", str(spec), "--out", str(folder / "out")])
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.output and "Wilcoxon p" in result.output  # the console line carries them too
    return json.loads((folder / "out" / "metrics.json").read_text())


@pytest.mark.parametrize("metric", ["p_cheese_ds", "p_toward_cheese"])
def test_report_intervals_and_p_values_equal_scipy_on_the_stored_per_maze_values(report: dict, metric: str) -> None:
    settings = report["summary"]["statistics"]["bootstrap"]
    summary = report["summary"][metric]
    sides = {side: [m[metric][side] for m in report["mazes"]] for side in ("original", "patched")}
    for side, values in sides.items():
        x = np.array([v for v in values if v is not None])
        assert summary[side]["n"] == len(x) >= 10
        assert summary[side]["mean_ci"] == pytest.approx(_scipy_ci(x, np.mean, settings), abs=1e-12)
        assert summary[side]["median_ci"] == pytest.approx(_scipy_ci(x, np.median, settings), abs=1e-12)
        assert summary[side]["mean_ci"][0] <= summary[side]["mean"] <= summary[side]["mean_ci"][1]
    both = [(o, p) for o, p in zip(sides["original"], sides["patched"], strict=True) if o is not None and p is not None]
    before, after = np.array(both).T
    change = summary["change"]
    assert change["n"] == len(both) and change["mean"] == pytest.approx(float(np.mean(after - before)))
    assert change["mean_ci"] == pytest.approx(_scipy_ci(after - before, np.mean, settings), abs=1e-12)
    assert change["wilcoxon_p"] == pytest.approx(float(stats.wilcoxon(after, before).pvalue), rel=1e-12)
    assert change["wilcoxon_p"] < 0.01  # subtracting the cheese vector changes the policy


def test_degenerate_samples_get_honest_intervals_not_nan() -> None:
    assert describe([]) == {
        "n": 0,
        "mean": None,
        "median": None,
        "q25": None,
        "q75": None,
        "mean_ci": None,
        "median_ci": None,
    }
    one = describe([0.5, None])
    assert one["n"] == 1 and one["mean_ci"] is None  # one maze: no interval
    same = describe([1.0, 1.0, 1.0])
    assert same["mean_ci"] == [1.0, 1.0] and same["median_ci"] == [1.0, 1.0]
    unchanged = describe_change([0.2, 0.4, None], [0.2, 0.4, 0.9])
    assert unchanged["n"] == 2 and unchanged["mean"] == 0 and unchanged["wilcoxon_p"] is None


def test_batched_intervals_equal_one_scipy_call_per_row() -> None:
    """describe_many bootstraps rows of equal length together; each interval is what its own scipy call gives."""
    rng = np.random.default_rng(3)
    columns = [
        list(rng.normal(size=12)),
        list(rng.integers(0, 3, size=12).astype(float)),  # ties, as P = 0 or 1 give
        [None, *rng.normal(size=11)],  # another length: its own bootstrap
        list(rng.normal(size=7)),
        [0.5] * 12,
        [1.0],
    ]
    settings = stats_settings()["bootstrap"]
    for values, got in zip(columns, describe_many(columns), strict=True):
        x = np.array([v for v in values if v is not None])
        if len(x) < 2:
            assert got["mean_ci"] is None and got["median_ci"] is None
        elif np.all(x == x[0]):
            assert got["mean_ci"] == got["median_ci"] == [x[0], x[0]]
        else:
            assert got["median_ci"] == _scipy_ci(x, np.median, settings)  # bit for bit
            assert got["mean_ci"] == pytest.approx(_scipy_ci(x, np.mean, settings), rel=1e-14)


def test_memory_bounded_bootstraps_give_the_same_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut into small batches (as at 10,000 mazes), the percentile and BCa intervals are the same numbers: scipy
    draws the resamples from one stream either way, and the jackknife's leave-one-out samples are the same."""
    from steer.analysis import stats as steer_stats

    rng = np.random.default_rng(8)
    rows = [list(rng.normal(size=300)), list(rng.integers(0, 2, size=300).astype(float))]
    gain = rng.integers(-1, 2, size=500).astype(float)
    whole = describe_many(rows), steer_stats.bca_intervals(gain)
    monkeypatch.setattr(steer_stats, "VALUES_PER_CALL", 997)  # a few resamples per call, and a ragged last one
    assert steer_stats.batch_for(300) == 3 and steer_stats.batch_for(500) == 1
    assert (describe_many(rows), steer_stats.bca_intervals(gain)) == whole


def test_bootstrap_memory_does_not_grow_with_the_mazes() -> None:
    """At 4,000 mazes the BCa jackknife alone would be a 4,000 x 3,999 array (128 MB) and the resamples 2,000 x
    4,000 (64 MB); batched, a call holds a few VALUES_PER_CALL arrays whatever n is (numpy reports to tracemalloc)."""
    import tracemalloc

    from steer.analysis import stats as steer_stats

    gain = np.random.default_rng(9).integers(-1, 2, size=4000).astype(float)
    tracemalloc.start()
    try:
        steer_stats.bca_intervals(gain)
        describe_many([list(gain)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 8 * steer_stats.VALUES_PER_CALL, f"{peak / 2**20:.0f} MB"


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_sort_median_equals_numpy_median(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.normal(size=(50, n)), rng.integers(0, 2, size=(50, n)).astype(float)])
    assert np.array_equal(median(x), np.median(x, axis=-1))
    assert np.array_equal(median(x.T, axis=0), np.median(x.T, axis=0))
    assert np.isnan(median(np.array([1.0, np.nan, 2.0])))


def _matrix(source_effect: float, seed: int = 0, n: int = 10) -> tuple[np.ndarray, list[int], list[int]]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n) * source_effect  # what every pair of one source shares
    cells = [(s, t, a[s] + rng.normal(0, 0.2)) for s in range(n) for t in range(n) if s != t]
    return np.array([v for _, _, v in cells]), [s for s, _, _ in cells], [t for _, t, _ in cells]


def test_a_transfer_matrix_with_a_shared_source_effect_gets_a_wider_two_way_interval_than_independent_pairs() -> None:
    from steer.analysis.stats import interval, two_way_intervals

    values, sources, targets = _matrix(source_effect=1.0)
    (low, high), _ = two_way_intervals(values, sources, targets)
    naive_low, naive_high = interval(values, np.mean)
    assert low <= values.mean() <= high
    # 90 pairs but only 10 sources carry the effect: the honest interval is several times the naive one
    assert (high - low) > 2.5 * (naive_high - naive_low)
    # without a shared effect the pairs are nearly independent and the two intervals are alike
    values, sources, targets = _matrix(source_effect=0.0)
    (low, high), (m_low, m_high) = two_way_intervals(values, sources, targets)
    naive_low, naive_high = interval(values, np.mean)
    assert 0.7 < (high - low) / (naive_high - naive_low) < 1.6 and m_low <= np.median(values) <= m_high


def test_the_two_way_interval_covers_the_mean_of_a_matrix_with_source_and_target_effects() -> None:
    # 95% nominal: over 200 matrices of 12 x 12 mazes with both effects, the interval of the mean contains the
    # true mean (0) in at least 90% of them, where resampling pairs as independent covers far fewer.
    from steer.analysis.stats import interval, two_way_intervals

    hits = naive_hits = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(0, 1, 12), rng.normal(0, 1, 12)
        cells = [(s, t, a[s] + b[t] + rng.normal(0, 0.5)) for s in range(12) for t in range(12) if s != t]
        values = np.array([v for _, _, v in cells])
        (low, high), _ = two_way_intervals(values, [c[0] for c in cells], [c[1] for c in cells])
        hits += low <= 0 <= high
        naive_low, naive_high = interval(values, np.mean)
        naive_hits += naive_low <= 0 <= naive_high
    assert hits / 200 >= 0.9 and naive_hits / 200 < 0.6  # 0.93 and 0.49 on these seeds


def _per_maze_like(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Per-maze values shaped like the real ones, and their true mean: a bimodal change (most mazes lose ~0.8
    of P(cheese | DS), the rest ~nothing, as the cheese vector does) and a skewed one (a few large gains)."""
    if kind == "bimodal":
        lost = rng.random(shape) < 0.6
        return np.where(lost, rng.normal(-0.8, 0.1, shape), rng.normal(0.0, 0.05, shape)), 0.6 * -0.8
    return rng.beta(0.5, 2.0, shape), 0.5 / 2.5


@pytest.mark.parametrize(("kind", "low"), [("bimodal", 0.93), ("skewed", 0.90)])
def test_claims_bca_intervals_cover_at_the_n_claims_use(kind: str, low: float) -> None:
    # 2,000 simulated samples of 20 mazes. Measured: bimodal 0.955 (percentile 0.929), skewed 0.923 (0.906): BCa
    # reaches the nominal 95% on the bimodal shape and recovers part of what the percentile interval loses on
    # the skewed one; what is left there is why claims report the detectable effect and want more mazes.
    from steer.analysis.stats import bca_intervals, intervals

    x, truth = _per_maze_like(kind, np.random.default_rng(0), (2000, 20))
    bca = np.array([bca_intervals(row)[0] for row in x])
    covered = np.mean((bca[:, 0] <= truth) & (truth <= bca[:, 1]))
    percentile = np.array(intervals(x, (np.mean,))[0])
    covered_percentile = np.mean((percentile[:, 0] <= truth) & (truth <= percentile[:, 1]))
    assert low <= covered <= 0.97 and covered > covered_percentile
