"""Claims: verdicts follow mechanically from the interval and the criterion written in the batch file."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from steer.analysis.verdicts import verdict
from steer.batch import load_batch
from steer.errors import SteerError


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


def test_steerability_counts_mazes_moved_the_claimed_way_the_opposite_way_and_not_at_all() -> None:
    from scipy.stats import binomtest

    from steer.analysis.claims import UNMOVED, steerability

    changes = [-0.5, -0.2, -0.02, -UNMOVED / 2, 0.0, UNMOVED / 2, 0.3]
    st = steerability({"paired": True, "per_maze": changes}, {"below": -0.3})
    assert st["claimed"] == "down" and st["claimed_way"]["k"] == 3 and st["opposite_way"]["k"] == 1
    assert st["unmoved"]["k"] == 3 and st["unmoved"]["n"] == 7
    wilson = binomtest(3, 7).proportion_ci(method="wilson")
    assert st["claimed_way"]["ci"] == [wilson.low, wilson.high]
    up = steerability({"paired": True, "per_maze": changes}, {"above": 0.1})
    assert up["claimed_way"]["k"] == 1 and up["opposite_way"]["k"] == 3
    band = steerability({"paired": True, "per_maze": changes}, {"within": [-0.1, 0.1]})
    assert band["claimed"] is None and band["up"]["k"] == 1 and band["down"]["k"] == 3
    assert steerability({"paired": False, "per_maze": changes}, {"below": 0}) is None  # a value, not a change


def test_too_few_mazes_or_no_interval_is_vacuous() -> None:
    assert verdict({"n": 4, "mean": -1, "mean_ci": [-1, -1]}, {"below": 0}) == "vacuous"
    assert verdict({"n": 30, "median": 0.5, "median_ci": None}, {"statistic": "median", "above": 0}) == "vacuous"


def _bca(values: list[float]) -> list[float]:
    from scipy.stats import bootstrap

    from steer.analysis.stats import RESAMPLES, SEED

    res = bootstrap(
        (np.array(values),), np.mean, n_resamples=RESAMPLES, method="BCa", random_state=np.random.default_rng(SEED)
    )
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def _batch(tmp_path: Path, claims: list[dict]) -> Path:
    path = tmp_path / "batch.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "small",
                "experiments": [
                    {
                        "name": "minus",
                        "command": "apply",
                        "spec": {
                            "seeds": {"from": 0, "to": 11},
                            "vector": {"kind": "cheese"},
                            "coeff": -1,
                            "controls": ["random"],
                        },
                    }
                ],
                "claims": claims,
            }
        )
    )
    return path


CLAIM = {
    "id": "cheese",
    "post": "Subtracting the cheese vector makes the agent ignore cheese.",
    "setting": "12 mazes",
    "measure": {"experiment": "minus", "metric": "p_cheese_ds", "kind": "change"},
    "control": {"experiment": "minus", "metric": "p_cheese_ds", "kind": "change", "source": "controls.random"},
}


def test_a_small_run_s_verdicts_follow_from_its_numbers_and_ci_fails_on_a_changed_verdict(tmp_path: Path) -> None:
    claims = [
        {**CLAIM, "criterion": {"below": -0.3}, "expect": "holds"},
        {**CLAIM, "id": "wrong-expectation", "criterion": {"above": 0.0}, "expect": "holds"},
    ]
    out, junit = tmp_path / "out", tmp_path / "claims.xml"
    result = CliRunner().invoke(app, ["batch", str(_batch(tmp_path, claims)), "--out", str(out), "--junit", str(junit)])
    assert result.exit_code == 1, result.output  # the second claim's verdict is not the expected one
    assert "1 claim(s) did not get their expected verdict" in result.output
    rows = {r["id"]: r for r in json.loads((out / "claims.json").read_text())}
    # Recompute each verdict from the per-maze values in metrics.json, by hand.
    # Claims use BCa intervals (scipy), recomputed here from the per-maze changes in metrics.json.
    report = json.loads((out / "minus" / "metrics.json").read_text())
    change = report["summary"]["p_cheese_ds"]["change"]
    per_maze = [
        m["p_cheese_ds"]["patched"] - m["p_cheese_ds"]["original"]
        for m in report["mazes"]
        if m["p_cheese_ds"]["original"] is not None
    ]
    control = [
        m["controls"]["random"]["p_cheese_ds"]["patched"] - m["controls"]["random"]["p_cheese_ds"]["original"]
        for m in report["mazes"]
        if m["p_cheese_ds"]["original"] is not None
    ]
    # A claim with a control is judged on the change minus the control's, maze by maze; the effect itself and
    # the control are shown beside it.
    beyond = [e - c for e, c in zip(per_maze, control, strict=True)]
    assert rows["cheese"]["effect"]["mean"] == pytest.approx(change["mean"])
    assert rows["cheese"]["effect"]["mean_ci"] == _bca(per_maze)
    assert rows["cheese"]["measured"]["mean"] == pytest.approx(np.mean(beyond))
    low, high = _bca(beyond)
    assert rows["cheese"]["measured"]["mean_ci"] == [low, high]
    assert rows["cheese"]["measured"]["interval"] == "mean: BCa, median: BCa bootstrap"
    assert rows["cheese"]["judged_on"] == "the measure minus its control, per maze"
    assert rows["cheese"]["verdict"] == ("holds" if high < -0.3 else "fails" if low >= -0.3 else "inconclusive")
    assert rows["wrong-expectation"]["verdict"] == "fails" and not rows["wrong-expectation"]["as_expected"]
    assert rows["cheese"]["control"]["mean_ci"] == _bca(control)
    # Nothing dropped without a count: the mazes without a decision square are counted, with the reason.
    undefined = sum(m["p_cheese_ds"]["original"] is None for m in report["mazes"])
    assert undefined and rows["cheese"]["measured"]["excluded"] == {
        "p_cheese_ds undefined (e.g. no decision square)": undefined
    }
    assert f"{undefined} left out: p_cheese_ds undefined" in rows["cheese"]["shown"]
    # Steerability, recomputed from the per-maze changes; the minimum detectable effect and Holm's adjustment
    # from statsmodels on the same numbers.
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.power import TTestPower

    deltas = [
        m["p_cheese_ds"]["patched"] - m["p_cheese_ds"]["original"]
        for m in report["mazes"]
        if m["p_cheese_ds"]["original"] is not None
    ]
    st = rows["cheese"]["steerability"]
    assert st["claimed_way"]["k"] == sum(d < -0.01 for d in deltas) and st["claimed_way"]["n"] == len(deltas)
    assert st["opposite_way"]["k"] == sum(d > 0.01 for d in deltas)
    assert rows["cheese"]["control_steerability"]["claimed_way"]["n"] == len(deltas)
    sd = float(np.std(beyond, ddof=1))
    assert rows["cheese"]["mde"] == pytest.approx(
        TTestPower().solve_power(nobs=len(beyond), alpha=0.05, power=0.8) * sd
    )
    raw = [rows[i]["measured"]["wilcoxon_p"] for i in ("cheese", "wrong-expectation")]
    assert [rows[i]["wilcoxon_p_holm"] for i in ("cheese", "wrong-expectation")] == list(
        multipletests(raw, method="holm")[1]
    )
    summary = (out / "summary.md").read_text()
    assert "Subtracting the cheese vector" in summary and "expected holds" in summary
    assert "claimed way" in summary and "Holm p" in summary and "after Holm's adjustment over the batch" in summary
    page = (out / "summary.html").read_text()
    assert "mazes moved (control)" in page and "after Holm&#39;s adjustment" in page
    cases = ET.parse(junit).getroot()
    assert cases.get("tests") == "2" and cases.get("failures") == "1"
    assert [c.get("name") for c in cases if c.find("failure") is not None] == ["wrong-expectation"]


def test_claims_are_checked_before_anything_runs(tmp_path: Path) -> None:
    bad = [{**CLAIM, "criterion": {"below": -0.3}, "measure": {**CLAIM["measure"], "experiment": "nope"}}]
    with pytest.raises(SteerError, match=r"claims\[0\].measure.experiment: 'nope' is not an experiment"):
        load_batch(_batch(tmp_path, bad))
    with pytest.raises(SteerError, match=r"claims\[0\].criterion: expected one of"):
        load_batch(_batch(tmp_path, [{**CLAIM, "criterion": {"near": 0}}]))
    with pytest.raises(SteerError, match=r"claims\[0\].criterion.precision: -0.1 is not a positive number"):
        load_batch(_batch(tmp_path, [{**CLAIM, "criterion": {"below": -0.3, "precision": -0.1}}]))


def test_a_change_on_the_headroom_or_logit_scale_does_not_depend_on_how_near_the_ceiling_mazes_start() -> None:
    from scipy.special import logit

    from steer.analysis.claim_measures import LOGIT_CLIP, measure

    pairs = [(0.5, 0.75), (0.9, 0.95), (0.99, 0.995), (1.0, 1.0), (0.2, 0.1), (0.6, 0.8)]
    report = {"mazes": [{"seed": i, "p_cheese_ds": {"original": o, "patched": p}} for i, (o, p) in enumerate(pairs)]}
    m = {"experiment": "e", "metric": "p_cheese_ds", "kind": "change"}
    raw = measure({"e": report}, m)
    assert raw["per_maze"] == pytest.approx([p - o for o, p in pairs]) and "scale" not in raw
    room = measure({"e": report}, {**m, "scale": "headroom"})
    # each of the first three mazes gains half its headroom, whatever its start; the maze at 1 is unmoved; a loss
    # counts against the room below (0.2 -> 0.1 loses half of it)
    assert room["per_maze"] == pytest.approx([0.5, 0.5, 0.5, 0.0, -0.5, 0.5]) and room["n"] == 6
    odds = measure({"e": report}, {**m, "scale": "logit"})
    clip = lambda v: min(max(v, LOGIT_CLIP), 1 - LOGIT_CLIP)  # noqa: E731
    assert odds["per_maze"] == pytest.approx([logit(clip(p)) - logit(clip(o)) for o, p in pairs])
    assert odds["scale"] == "logit" and odds["n"] == 6


def test_a_scale_is_checked_before_anything_runs(tmp_path: Path) -> None:
    bad = {**CLAIM, "criterion": {"below": 0.5}, "measure": {**CLAIM["measure"], "scale": "percent"}}
    with pytest.raises(SteerError, match=r"claims\[0\].measure.scale: 'percent' is not one of raw, headroom, logit"):
        load_batch(_batch(tmp_path, [bad]))
    value = {**CLAIM, "criterion": {"below": 0.5}, "measure": {**CLAIM["measure"], "kind": "value", "scale": "logit"}}
    with pytest.raises(SteerError, match=r"measure.scale: a scale applies to a change"):
        load_batch(_batch(tmp_path, [value]))


def test_a_reported_number_is_judged_on_the_interval_its_study_gives(tmp_path: Path) -> None:
    from steer.analysis.claim_specs import parse_claims
    from steer.analysis.claims import evaluate

    (tmp_path / "stats").mkdir()
    report = {"fit": [{"coef": {"value": -1.4, "ci": [-1.6, -1.2]}, "n": 500}]}
    (tmp_path / "stats" / "metrics.json").write_text(json.dumps(report))
    measure = {"experiment": "stats", "kind": "reported", "path": "fit.0.coef", "n": "fit.0.n"}
    claims = parse_claims(
        [
            {"id": "neg", "post": "p", "setting": "s", "measure": measure, "criterion": {"below": 0}},
            {"id": "big", "post": "p", "setting": "s", "measure": measure, "criterion": {"below": -1.3}},
            {
                "id": "tight",
                "post": "p",
                "setting": "s",
                "measure": measure,
                "criterion": {"below": -1.3, "precision": 0.1},
            },
            {
                "id": "wide",
                "post": "p",
                "setting": "s",
                "measure": measure,
                "criterion": {"below": 0, "precision": 0.1},
            },
        ],
        ["stats"],
    )
    rows = {r["id"]: r for r in evaluate(claims, tmp_path)}
    assert rows["neg"]["verdict"] == "holds" and rows["neg"]["measured"]["n"] == 500
    assert rows["big"]["verdict"] == "inconclusive" and rows["tight"]["verdict"] == "underpowered"
    assert rows["wide"]["verdict"] == "holds"  # wider than its precision, but wholly below 0: decided
    with pytest.raises(SteerError, match=r"measure.path: 'fit.0.nope'"):
        evaluate(
            parse_claims([{**claims[0].__dict__, "measure": {**measure, "path": "fit.0.nope"}}], ["stats"]), tmp_path
        )
    with pytest.raises(SteerError, match=r"measure.n: missing"):
        parse_claims(
            [{"id": "x", "post": "p", "setting": "s", "measure": {**measure, "n": None}, "criterion": {"below": 0}}],
            ["stats"],
        )
