"""`steer behaviour-stats`: the posts' maze features as defined, exact outcomes equal to `steer behaviour`'s, the
regressions on data whose answer is known, and the command end to end on the real checkpoint."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from _charts import assert_band, cells, intervals, panels
from _cli import run, write_spec
from _tables import check_tables
from PIL import Image
from test_metrics import make_maze

from steer.analysis.behaviour_stats import (
    POST_THREE,
    analyse,
    coefficients,
    held_out_accuracy,
    outside_top_right,
    table,
)
from steer.maze.decision_features import DECISION_FEATURES, decision_features, region_squares, top_right_n
from steer.studies import behaviour_stats

# A 7x7 inner maze in a 9x9 world (inner rows and columns 1-7): a corridor along row 1 from the start (1,1) to
# (1,7), up column 7 to the top-right square (7,7), and a branch from (1,4) up to the cheese at (4,4). The paths
# to the cheese and to the top-right part at (1,4): the decision square.
L_MAZE = make_maze(
    """
    #########
    #######.#
    #######.#
    #######.#
    ####C##.#
    ####.##.#
    ####.##.#
    #.......#
    #########
    """,
    maze_dim=7,
)


def test_every_feature_is_computed_as_defined_on_a_hand_built_maze() -> None:
    f = decision_features(L_MAZE)
    assert set(f) == set(DECISION_FEATURES)
    assert L_MAZE.decision_square() == (1, 4) and L_MAZE.cheese == (4, 4)
    expected = {
        "maze_dim": 7,
        "has_decision_square": 1,
        "euclid_ds_cheese": 3.0,  # (1,4) to (4,4)
        "path_ds_cheese": 3,
        "euclid_ds_top_right": math.hypot(6, 3),  # (1,4) to (7,7)
        "path_ds_top_right": 3 + 6,  # right along row 1, then up column 7
        "euclid_ds_region": 2.0,  # the region is rows and columns 3-7; (3,4) is nearest
        "path_ds_region": 2,  # up the branch to (3,4)
        "euclid_cheese_top_right": math.hypot(3, 3),
        "path_cheese_top_right": 3 + 3 + 6,  # down the branch, right, up
        "euclid_cheese_region": 0.0,  # the cheese is inside it
        "path_cheese_region": 0,
        "euclid_start_cheese": math.hypot(3, 3),
        "path_start_cheese": 3 + 3,
        "euclid_start_top_right": math.hypot(6, 6),
        "path_start_top_right": 6 + 6,
        "cheese_top_right_n": 4,  # 3 rows below and 3 columns left of (7,7)
    }
    assert f == pytest.approx(expected)
    # The region: the inner maze's top-right 5x5 squares; membership by n: the least n whose square holds it.
    assert region_squares(L_MAZE) == [(r, c) for r in range(3, 8) for c in range(3, 8)]
    assert top_right_n(L_MAZE, (7, 7)) == 1 and top_right_n(L_MAZE, (6, 3)) == 5 and top_right_n(L_MAZE, (1, 1)) == 7


def test_features_of_a_maze_without_a_decision_square_are_undefined_not_zero() -> None:
    # The cheese on the corridor to the top-right: the path to the corner contains it, so there is no choice.
    maze = L_MAZE.with_cheese((1, 6))
    f = decision_features(maze)
    assert maze.decision_square() is None and f["has_decision_square"] == 0
    assert all(math.isnan(f[k]) for k in DECISION_FEATURES if "_ds_" in k)
    assert f["path_cheese_top_right"] == 1 + 6 and f["path_start_cheese"] == 5


def _synthetic(n: int, informative: bool, seed: int = 0) -> list[dict[str, float]]:
    """Mazes whose outcome depends on the cheese's distance from the top-right alone (or on nothing)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        row = {k: float(rng.normal()) for k in DECISION_FEATURES}
        row["has_decision_square"] = 1.0
        logit = -2.5 * row["euclid_cheese_top_right"] + 0.8 if informative else 0.8
        row["p_reach_cheese"] = float(1 / (1 + math.exp(-logit)) > rng.uniform())  # one coin flip, as sampled
        row["cheese_top_right_n"] = float(rng.integers(1, 8))
        rows.append(row)
    return rows


def test_the_regressions_find_a_feature_that_decides_and_nothing_where_nothing_does() -> None:
    found = analyse(_synthetic(600, informative=True), resamples=60)
    three = found["coefficients_three"]["coefficients"]
    assert three["euclid_cheese_top_right"]["ci"][1] < -1.0  # the deciding feature, strongly negative
    assert three["euclid_cheese_top_right"]["same_sign_share"] == 1.0
    assert (
        found["single"]["euclid_cheese_top_right"]["accuracy"]
        > found["single"]["euclid_cheese_top_right"]["baseline"] + 0.1
    )
    assert found["three"]["mcnemar_p"] < 1e-6
    assert found["fractional_logit_three"]["euclid_cheese_top_right"]["ci"][1] < 0
    # An irrelevant feature alone predicts no better than the majority class.
    assert found["single"]["maze_dim"]["accuracy"] <= found["single"]["maze_dim"]["baseline"] + 0.03
    null = analyse(_synthetic(600, informative=False), resamples=60)
    assert null["three"]["accuracy"] <= null["three"]["baseline"] + 0.03 and null["three"]["mcnemar_p"] > 0.01


def test_the_regressions_are_the_same_numbers_whatever_the_global_random_state() -> None:
    """liblinear shuffles the data with a generator of its own: seeded, a run and its rerun (or the same mazes
    through Ray) give the same report; unseeded, the 10,000-maze run's coefficients moved in the 4th digit."""
    x, p = table(_synthetic(200, informative=True), list(POST_THREE))
    y = (p >= 0.5).astype(int)
    np.random.seed(1)
    first = held_out_accuracy(x, y), coefficients(x, y, POST_THREE, resamples=50, halves=10)
    np.random.seed(2)
    assert (held_out_accuracy(x, y), coefficients(x, y, POST_THREE, resamples=50, halves=10)) == first


def test_too_few_mazes_say_so_instead_of_fitting() -> None:
    out = analyse(_synthetic(12, informative=True))
    assert "too few" in out["skipped"] and "coefficients_three" not in out


def test_the_outside_top_right_curve_counts_mazes_by_region() -> None:
    rows = [
        {"has_decision_square": 1.0, "p_reach_cheese": p, "cheese_top_right_n": float(n)}
        for n, p in ((1, 0.9), (2, 0.8), (3, 0.2), (6, 0.1))
    ]
    curve = outside_top_right(rows)
    assert [c["mazes"] for c in curve[:5]] == [3, 2, 1, 1, 1]  # outside the top n x n: n_cheese > n
    assert curve[0]["share_gets_cheese"] == pytest.approx(1 / 3) and curve[2]["share_gets_cheese"] == 0.0


@pytest.fixture(scope="module")
def conditions(tmp_path_factory) -> Path:
    """Three mazes under three conditions: the checkpoint, its policy steered, and another checkpoint."""
    folder = tmp_path_factory.mktemp("bstats-conditions")
    spec = write_spec(
        folder,
        {"name": "bs", "seeds": [3, 7, 11], "vector": {"kind": "cheese"}, "coeff": -1,
         "checkpoints": ["maze-rr5-easy-2M"]},
    )  # fmt: skip
    result = run("behaviour-stats", spec, "--out", folder / "out")
    assert result.exit_code == 0, result.output
    assert "regressions skipped" in result.output  # three mazes are too few to fit, and it says so
    return folder / "out"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """80 mazes of the original policy: enough for the regressions and every figure."""
    folder = tmp_path_factory.mktemp("bstats-fit")
    spec = write_spec(folder, {"name": "bs", "seeds": {"from": 0, "to": 79}, "resamples": 50})
    result = run("behaviour-stats", spec, "--out", folder / "out")
    assert result.exit_code == 0, result.output
    return folder / "out"


def _csv(folder: Path) -> list[dict[str, str]]:
    with open(folder / "features.csv") as f:
        return list(csv.DictReader(f))


def test_a_row_per_maze_and_condition(conditions: Path) -> None:
    report = json.loads((conditions / "metrics.json").read_text())
    labels = report["conditions"]
    assert labels == ["maze-rr5-easy-160M", "maze-rr5-easy-160M, cheese x -1", "maze-rr5-easy-2M"]
    assert [c["condition"] for c in report["by_condition"]] == labels
    rows = _csv(conditions)
    assert len(rows) == 3 * 3 and {r["condition"] for r in rows} == set(labels)
    assert "features.csv" in json.loads((conditions / "manifest.json").read_text())["reports"]
    check_tables(conditions)
    by = {(int(r["seed"]), r["condition"]): r for r in rows}
    for seed in (3, 7, 11):  # the features are the maze's, whatever the condition
        assert len({by[(seed, c)]["path_ds_cheese"] for c in labels}) == 1


def test_exact_outcomes_equal_steer_behaviours(conditions: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"name": "b", "seeds": [3, 7, 11], "vector": {"kind": "cheese"}, "coeffs": [-1]})
    result = run("behaviour", spec, "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    behaviour = {m["seed"]: m for m in json.loads((tmp_path / "b" / "metrics.json").read_text())["mazes"]}
    own, steered, _ = json.loads((conditions / "metrics.json").read_text())["conditions"]
    rows = {(int(r["seed"]), r["condition"]): r for r in _csv(conditions)}
    for seed, m in behaviour.items():
        for key in ("p_reach_cheese", "p_reach_top_right", "mean_steps"):
            assert float(rows[(seed, own)][key]) == m["original"][key]
            assert float(rows[(seed, steered)][key]) == m["by_coeff"][0][key]["patched"]


def test_the_regressions_and_figures_on_real_mazes(fitted: Path) -> None:
    report = json.loads((fitted / "metrics.json").read_text())
    rows = _csv(fitted)
    fit = report["by_condition"][0]["regressions"]
    assert "skipped" not in fit and fit["with_decision_square"] == sum(float(r["has_decision_square"]) for r in rows)
    for name in ("accuracy.png", "coefficients.png", "by-distance.png", "cheese-map.png"):
        assert Image.open(fitted / name).size[0] > 300
    # The unpatched agent reaches the cheese in most of these easy mazes, and the curve says where it does not.
    assert report["by_condition"][0]["outcomes"]["p_reach_cheese"]["mean"] > 0.7
    assert report["by_condition"][0]["outside_top_right"][0]["n"] == 1


def test_the_figures_show_the_reports_numbers(fitted: Path) -> None:
    """The four figures drawn again from metrics.json, read back from their axes."""
    report = json.loads((fitted / "metrics.json").read_text())
    own = report["by_condition"][0]
    fit = own["regressions"]
    figs = behaviour_stats.figures(report, "run")
    assert list(figs) == ["accuracy.png", "coefficients.png", "by-distance.png", "cheese-map.png"]
    # accuracy: per row the held-out accuracy and its Wilson interval, beside the majority baseline.
    (ax,) = panels(figs["accuracy.png"])
    accs = [*fit["single"].values(), fit["all"], fit["three"], fit["four"]]
    xs, spans = intervals(ax, "model (Wilson 95% interval)")
    assert list(xs) == [a["accuracy"] for a in accs] and spans == [tuple(a["accuracy_ci"]) for a in accs]
    assert list(intervals(ax, "always the majority outcome")[0]) == [a["baseline"] for a in accs]
    # coefficients: the L1 fit's and the fractional logit's, each with its interval, and the posts' values.
    (ax,) = panels(figs["coefficients.png"])
    coefs, glm = fit["coefficients_four"]["coefficients"], fit["fractional_logit_four"]
    xs, spans = intervals(ax, "L1 logistic, binarised (bootstrap 95%)")
    assert list(xs) == [coefs[f]["value"] for f in report["post_four"]]
    assert spans == [tuple(coefs[f]["ci"]) for f in report["post_four"]]
    xs, spans = intervals(ax, "fractional logit, exact P (HC0 95%)")
    assert spans == [tuple(glm[f]["ci"]) for f in report["post_four"]]
    low, high = ax.get_xlim()
    assert low == pytest.approx(-high)  # one scale either side of 0
    # by-distance: the mean P(reach) per bin, its interval as the band, a gap where a bin is empty.
    (ax,) = panels(figs["by-distance.png"])
    curve = own["by_cheese_top_right_distance"]
    ci = [c["mean_ci"] or [c["mean"]] * 2 if c["n"] else [None, None] for c in curve]
    assert_band(ax, [c["mean"] if c["n"] else None for c in curve], [c[0] for c in ci], [c[1] for c in ci], None)
    # cheese map: each cell the mean over the mazes whose cheese sits there; every maze in one cell.
    (ax,) = panels(figs["cheese-map.png"])
    grid = own["by_cheese_offset"]
    want = np.array([[np.nan if c is None else c["mean"] for c in row] for row in grid])
    np.testing.assert_array_equal(cells(ax), want)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert sum(c["n"] for row in grid for c in row if c) == report["mazes"] == 80
    rows = [r for r in _csv(fitted) if r["condition"] == report["conditions"][0]]
    total = sum(c["n"] * c["mean"] for row in grid for c in row if c)
    assert total == pytest.approx(sum(float(r["p_reach_cheese"]) for r in rows))
    # Each cell says its mean and its n (empty cells nothing).
    written = [f"{c['mean']:.2f}\nn {c['n']}" if c else "" for row in grid for c in row]
    assert [t.get_text() for t in ax.texts] == written


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"checkpoints": "maze-rr5-easy-2M"}, "checkpoints: expected a list of 1 to 8 checkpoint names"),
        (
            {"checkpoints": ["/nowhere/model.pth"]},
            "checkpoints[0]: checkpoint: file '/nowhere/model.pth' does not exist",
        ),
        ({"resamples": 5}, "resamples: expected a number of bootstrap resamples from 50 to 5000, got 5"),
        ({"vector": {"kind": "cheese"}}, "coeff: a steered condition needs both `vector` and `coeff`"),
    ],
)
def test_bad_input_is_one_clear_message(tmp_path: Path, extra: dict, message: str) -> None:
    spec = write_spec(tmp_path, {"name": "bad", "seeds": [1], **extra})
    result = run("behaviour-stats", spec, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
