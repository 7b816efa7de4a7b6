"""The verdict rule (steer/analysis/verdicts.py): a verdict follows mechanically from the interval and the criterion
written in the batch file. How a claim gets its interval, end to end, is tests/test_claims.py's."""

from __future__ import annotations

import pytest

from steer.analysis.verdicts import verdict


@pytest.mark.parametrize(
    ("ci", "criterion", "expected"),
    [
        ([-0.9, -0.5], {"below": -0.3}, "holds"),
        ([-0.4, -0.2], {"below": -0.3}, "inconclusive"),
        ([-0.3, 0.1], {"below": -0.3}, "fails"),  # the whole interval on the other side (touching counts)
        ([0.2, 0.4], {"above": 0.1}, "holds"),
        ([0.0, 0.2], {"above": 0.1}, "inconclusive"),
        ([-0.1, 0.1], {"above": 0.1}, "fails"),
        ([-0.05, 0.05], {"within": [-0.1, 0.1]}, "holds"),
        ([0.05, 0.2], {"within": [-0.1, 0.1]}, "inconclusive"),
        ([0.2, 0.3], {"within": [-0.1, 0.1]}, "fails"),
    ],
)
def test_a_verdict_is_where_the_interval_lies_against_the_criterion(ci, criterion, expected) -> None:
    assert verdict({"n": 20, "mean": sum(ci) / 2, "mean_ci": ci}, criterion) == expected


@pytest.mark.parametrize(
    ("ci", "criterion", "expected"),
    [
        # A decisive interval decides, however wide: the rows the issue found reported "underpowered".
        ([0.147, 0.320], {"below": 0.1, "precision": 0.05}, "fails"),  # cheese-add-unsaturated, discovery
        ([0.125, 0.285], {"below": 0.1, "precision": 0.05}, "fails"),  # ... and replication
        ([0.407, 0.814], {"above": 0, "precision": 0.1}, "holds"),  # top-right-grows
        ([0.257, 0.459], {"above": 0.1, "precision": 0.1}, "holds"),  # discover-top-right-removed-beats-kept
        ([-0.77, -0.55], {"below": -0.05, "precision": 0.1}, "holds"),  # discover's cheese vector beyond control
        # Straddling: underpowered only when wider than the precision, else inconclusive.
        ([0.0, 0.4], {"above": 0.1, "precision": 0.1}, "underpowered"),
        ([0.05, 0.2], {"above": 0.1, "precision": 0.1}, "inconclusive"),
        ([0.05, 0.2], {"above": 0.1}, "inconclusive"),  # no precision stated: never underpowered
        ([-0.5, 0.1], {"below": -0.3, "precision": 0.1}, "underpowered"),
        # Touching the threshold is not beyond it.
        ([0.1, 0.3], {"above": 0.1, "precision": 0.01}, "underpowered"),
        ([-0.3, -0.1], {"below": -0.3, "precision": 0.5}, "fails"),
        # within: the whole interval inside the band holds, wholly outside fails, whatever the width ...
        ([-0.05, 0.05], {"within": [-0.1, 0.1], "precision": 0.05}, "holds"),
        ([0.2, 0.9], {"within": [-0.1, 0.1], "precision": 0.05}, "fails"),
        # ... straddling an edge: wider than the precision, or than the band itself, is underpowered
        ([0.05, 0.2], {"within": [-0.1, 0.1], "precision": 0.1}, "inconclusive"),
        ([0.0, 0.3], {"within": [-0.1, 0.1], "precision": 0.1}, "underpowered"),
        ([-0.15, 0.15], {"within": [-0.1, 0.1]}, "underpowered"),  # 0.3 wide, the band 0.2: it can never fit
        ([-0.15, 0.0], {"within": [-0.1, 0.1]}, "inconclusive"),
    ],
)
def test_direction_comes_first_and_only_a_straddling_interval_can_be_underpowered(ci, criterion, expected) -> None:
    assert verdict({"n": 20, "mean": sum(ci) / 2, "mean_ci": ci}, criterion) == expected


def test_too_few_mazes_is_vacuous_before_any_other_branch() -> None:
    assert verdict({"n": 3, "mean": -0.6, "mean_ci": [-0.9, -0.5]}, {"below": -0.3, "precision": 0.1}) == "vacuous"
    assert verdict({"n": 3, "mean": 0, "mean_ci": [-1, 1]}, {"below": -0.3, "precision": 0.1}) == "vacuous"


def test_too_few_mazes_or_no_interval_is_vacuous() -> None:
    assert verdict({"n": 4, "mean": -1, "mean_ci": [-1, -1]}, {"below": 0}) == "vacuous"
    assert verdict({"n": 30, "median": 0.5, "median_ci": None}, {"statistic": "median", "above": 0}) == "vacuous"
