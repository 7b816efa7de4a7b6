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


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_sort_median_equals_numpy_median(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.normal(size=(50, n)), rng.integers(0, 2, size=(50, n)).astype(float)])
    assert np.array_equal(median(x), np.median(x, axis=-1))
    assert np.array_equal(median(x.T, axis=0), np.median(x.T, axis=0))
    assert np.isnan(median(np.array([1.0, np.nan, 2.0])))
