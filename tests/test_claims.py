"""The claims engine (steer/analysis/claim_specs.py, claims.py, claim_measures.py): on synthetic metrics.json
files, every claim can fail at its null (or is a labelled sanity check), a control is judged against maze by
maze, two groups are contrasted, an asymmetry is a sum, changes go on a scale, and nothing is dropped without a
count; end to end, a small batch's claims are judged from its own numbers and checked before anything runs.
The verdict rule itself is tests/test_verdicts.py's."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

import steer
from cli.main import app
from steer.analysis.claim_specs import null_value, parse_claims
from steer.analysis.claims import evaluate
from steer.analysis.stats import RESAMPLES, SEED
from steer.batch import load_batch
from steer.errors import SteerError

EXPS = ["e", "f"]


def _claim(**over: object) -> dict:
    base = {
        "id": "c",
        "post": "p",
        "setting": "s",
        "measure": {"experiment": "e", "metric": "p_cheese_ds", "kind": "change"},
        "criterion": {"below": -0.3},
    }
    return {**base, **over}


def _maze(seed: int, original: float | None, patched: float | None, control: float | None = None, **extra) -> dict:
    m = {"seed": seed, "maze_dim": extra.pop("maze_dim", 9), "p_cheese_ds": {"original": original, "patched": patched}}
    if control is not None:
        m["controls"] = {"random": {"p_cheese_ds": {"original": original, "patched": control}}}
    return {**m, **extra}


def _write(tmp_path: Path, name: str, mazes: list[dict], skipped: list[dict] | None = None) -> None:
    (tmp_path / name).mkdir(exist_ok=True)
    (tmp_path / name / "metrics.json").write_text(json.dumps({"mazes": mazes, "skipped": skipped or []}))


@pytest.mark.parametrize(
    ("criterion", "measure"),
    [
        ({"below": 0.1}, {"kind": "change"}),  # "does not increase much": a zero change holds it
        ({"below": 0.2, "precision": 0.1}, {"kind": "change"}),  # discover-top-right-small-kept
        ({"within": [-0.01, 0.01]}, {"kind": "change"}),  # a zero vector moves nothing
        ({"above": -0.5}, {"kind": "trend", "coeffs": [1, 2]}),
        ({"below": 1}, {"kind": "value", "no_effect": 0}),
        ({"above": -1}, {"kind": "reported", "path": "a", "n": "b"}),  # a reported number's null is 0
    ],
)
def test_a_claim_that_holds_at_its_null_is_refused_as_a_finding(criterion: dict, measure: dict) -> None:
    m = {"experiment": "e", "metric": "p_cheese_ds", **measure}
    with pytest.raises(SteerError, match=r"claims\[0\] \(c\): its criterion .* already holds at the measure's null"):
        parse_claims([_claim(measure=m, criterion=criterion)], EXPS)
    (sanity,) = parse_claims([_claim(measure=m, criterion=criterion, sanity=True)], EXPS)
    assert sanity.sanity  # the same check, labelled a sanity check, is accepted


def test_a_claim_holding_at_its_null_can_be_a_finding_behind_a_precondition_that_fails_there() -> None:
    """'Few mazes move the wrong way' is 0 with no effect; given that most move the claimed way (not so with no
    effect: the claim is then vacuous), it can fail. A precondition that itself holds at its null rescues nothing."""
    anti = {"experiment": "e", "kind": "reported", "path": "anti", "n": "n"}
    most = {"measure": {"experiment": "e", "kind": "reported", "path": "claimed", "n": "n"}, "reason": "it steers"}
    (ok,) = parse_claims(
        [_claim(measure=anti, criterion={"below": 0.1}, precondition={**most, "criterion": {"above": 0.5}})], EXPS
    )
    assert ok.precondition is not None
    with pytest.raises(SteerError, match="already holds at the measure's null"):
        parse_claims(
            [_claim(measure=anti, criterion={"below": 0.1}, precondition={**most, "criterion": {"below": 0.5}})], EXPS
        )


def test_the_null_is_what_the_measure_implies() -> None:
    change = parse_claims([_claim()], EXPS)[0]
    assert null_value(change) == 0.0
    value = _claim(measure={"experiment": "e", "metric": "additivity_error", "kind": "value", "no_effect": 1})
    (v,) = parse_claims([{**value, "criterion": {"statistic": "median", "below": 0.3}}], EXPS)
    assert null_value(v) == 1.0  # can fail: 1 is not below 0.3
    with pytest.raises(SteerError, match="has no null the engine can check the claim against; state it"):
        parse_claims([_claim(measure={"experiment": "e", "metric": "x", "kind": "value"})], EXPS)
    with pytest.raises(SteerError, match="no_effect: 'a'"):
        parse_claims([_claim(measure={"experiment": "e", "metric": "x", "kind": "value", "no_effect": "a"})], EXPS)
    with pytest.raises(SteerError, match="has the null 0 by construction"):
        parse_claims([_claim(measure={"experiment": "e", "metric": "x", "kind": "change", "no_effect": 1})], EXPS)


def test_a_control_reading_other_mazes_cannot_be_judged_against_and_says_so() -> None:
    control = {
        "experiment": "e",
        "metric": "p_cheese_ds",
        "kind": "change",
        "where": [{"key": "maze_dim", "above": 10}],
    }
    with pytest.raises(SteerError, match=r"claims\[0\].control: .* it reads other mazes \(where differ\)"):
        parse_claims([_claim(control=control)], EXPS)
    (ok,) = parse_claims([_claim(control=control, control_role="reference")], EXPS)
    assert not ok.against_control
    with pytest.raises(SteerError, match="control_role: 'judge' is not one of control, reference"):
        parse_claims([_claim(control=control, control_role="judge")], EXPS)


def _bca(x: list[float]) -> list[float]:
    res = stats.bootstrap(
        (np.array(x),), np.mean, n_resamples=RESAMPLES, method="BCa", random_state=np.random.default_rng(SEED)
    )
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def test_a_claim_with_a_control_is_judged_on_the_change_beyond_it_maze_by_maze(tmp_path: Path) -> None:
    # The effect is -0.5 everywhere, but the control moves -0.45: beyond the control it is -0.05, and the claim
    # "below -0.3" fails although the raw change alone would hold it.
    mazes = [_maze(s, 0.9, 0.4 + 0.01 * (s % 3), 0.45 + 0.01 * (s % 2)) for s in range(12)]
    mazes += [_maze(12, None, None, None), _maze(13, 0.9, 0.4)]  # undefined; no control value
    _write(tmp_path, "e", mazes, skipped=[{"seed": 99, "reason": "no room for the path"}])
    control = {"experiment": "e", "metric": "p_cheese_ds", "kind": "change", "source": "controls.random"}
    (row,) = evaluate(parse_claims([_claim(control=control)], EXPS), tmp_path)
    effect = [m["p_cheese_ds"]["patched"] - 0.9 for m in mazes[:12]]
    beyond = [
        e - (m["controls"]["random"]["p_cheese_ds"]["patched"] - 0.9) for e, m in zip(effect, mazes, strict=False)
    ]
    assert row["measured"]["mean"] == pytest.approx(np.mean(beyond)) and row["measured"]["mean_ci"] == _bca(beyond)
    assert row["effect"]["mean"] == pytest.approx(np.mean([*effect, -0.5]))
    assert row["verdict"] == "fails" and row["effect"]["mean_ci"][1] < -0.3
    assert row["measured"]["excluded"] == {
        "skipped by the experiment (e.g. no room for the path)": 1,
        "p_cheese_ds undefined (e.g. no decision square)": 1,
        "no control value": 1,
    }
    assert "3 left out" in row["shown"] and row["shown"].startswith("beyond the control: ")


def test_an_asymmetry_is_the_plus_change_plus_the_minus_change_on_the_same_mazes(tmp_path: Path) -> None:
    _write(tmp_path, "e", [_maze(s, 0.5, 0.55 + 0.01 * (s % 4)) for s in range(10)])  # adding: about +0.06
    _write(tmp_path, "f", [_maze(s, 0.5, 0.1) for s in range(1, 10)])  # subtracting: -0.4, one maze fewer
    measure = {
        "experiment": "e",
        "metric": "p_cheese_ds",
        "kind": "versus",
        "plus": {"experiment": "f", "metric": "p_cheese_ds", "kind": "change"},
    }
    (row,) = evaluate(parse_claims([_claim(measure=measure, criterion={"below": 0})], EXPS), tmp_path)
    sums = [0.05 + 0.01 * (s % 4) - 0.4 for s in range(1, 10)]
    assert row["measured"]["per_maze"] == pytest.approx(sums) and row["verdict"] == "holds"
    assert row["measured"]["excluded"] == {"not measured by the other measure": 1}
    logit = {**measure, "scale": "logit", "plus": {**measure["plus"], "scale": "logit"}}
    (row,) = evaluate(parse_claims([_claim(measure=logit, criterion={"below": 0})], EXPS), tmp_path)
    expected = [stats.logistic.ppf(0.55 + 0.01 * (s % 4)) + stats.logistic.ppf(0.1) for s in range(1, 10)]
    assert row["measured"]["per_maze"] == pytest.approx(expected)


def test_two_groups_of_mazes_are_contrasted_with_a_two_group_interval(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    large = [_maze(s, 0.1, 0.1 + 0.2 + 0.05 * rng.standard_normal(), maze_dim=13) for s in range(10)]
    small = [_maze(s, 0.1, 0.1 + 0.02 * rng.standard_normal(), maze_dim=5) for s in range(10, 18)]
    _write(tmp_path, "e", large + small)
    change = {"experiment": "e", "metric": "p_cheese_ds", "kind": "change"}
    measure = {
        **change,
        "kind": "contrast",
        "where": [{"key": "maze_dim", "above": 10}],
        "minus": {**change, "where": [{"key": "maze_dim", "below": 8}]},
    }
    (row,) = evaluate(parse_claims([_claim(measure=measure, criterion={"above": 0})], EXPS), tmp_path)
    x = np.array([m["p_cheese_ds"]["patched"] - 0.1 for m in large])
    y = np.array([m["p_cheese_ds"]["patched"] - 0.1 for m in small])
    got = row["measured"]
    assert got["n_groups"] == [10, 8] and got["mean"] == pytest.approx(x.mean() - y.mean())
    res = stats.bootstrap(
        (x, y),
        lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
        n_resamples=RESAMPLES,
        method="BCa",
        random_state=np.random.default_rng(SEED),
    )
    assert got["mean_ci"] == pytest.approx([res.confidence_interval.low, res.confidence_interval.high])
    assert got["mann_whitney_p"] == pytest.approx(stats.mannwhitneyu(x, y).pvalue)
    assert row["verdict"] == "holds" and got["excluded"] == {
        "outside the claim's subset (maze_dim above 10)": 8,
        "second group: outside the claim's subset (maze_dim below 8)": 10,
    }


def test_a_flat_maze_enters_a_trend_as_rho_0_and_is_counted(tmp_path: Path) -> None:
    def maze(seed: int, ys: list[float | None]) -> dict:
        by = [
            {"coeff": c, "p_top_right_ds": {"original": 0.1, "patched": y}} for c, y in zip((1, 2, 5), ys, strict=True)
        ]
        return {"seed": seed, "by_coeff": by}

    mazes = [maze(s, [0.1, 0.2, 0.3 + s]) for s in range(6)] + [maze(6, [0.2, 0.2, 0.2]), maze(7, [0.2, None, 0.3])]
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "metrics.json").write_text(json.dumps({"mazes": mazes}))
    measure = {"experiment": "e", "metric": "p_top_right_ds", "kind": "trend", "coeffs": [1, 2, 5]}
    (row,) = evaluate(parse_claims([_claim(measure=measure, criterion={"above": 0})], EXPS), tmp_path)
    assert row["measured"]["per_maze"] == [1.0] * 6 + [0.0]  # the flat maze is in, at rho 0
    assert row["measured"]["flat"] == 1 and row["measured"]["excluded"] == {"a coefficient's value undefined": 1}
    assert "1 flat (rho 0)" in row["shown"]


def test_sanity_checks_are_not_findings_nor_in_the_multiplicity_family(tmp_path: Path) -> None:
    from steer.report.claims_text import counts_text, markdown

    _write(tmp_path, "e", [_maze(s, 0.9, 0.9 - 0.4 - 0.01 * s) for s in range(10)])
    zero = _claim(id="zero", criterion={"within": [-1, 1]}, sanity=True)
    rows = evaluate(parse_claims([_claim(), zero], EXPS), tmp_path)
    assert rows[0]["wilcoxon_p_holm"] == rows[0]["measured"]["wilcoxon_p"]  # a family of one: the finding
    assert rows[1]["wilcoxon_p_holm"] is None and rows[1]["sanity"]
    assert counts_text(rows) == "Findings: 1 holds (1 claims). Sanity checks: 1 holds (1)."
    text = markdown(rows, "# header")
    assert text.index("`c`") < text.index("### Checks that the instrument works") < text.index("`zero`")


def test_a_versus_names_exactly_one_other_measure() -> None:
    measure = {"experiment": "e", "metric": "p_cheese_ds", "kind": "versus"}
    other = {"experiment": "f", "metric": "p_cheese_ds", "kind": "change"}
    for bad in (measure, {**measure, "minus": other, "plus": other}):
        with pytest.raises(SteerError, match=r"claims\[0\].measure: a versus measure names one other measure"):
            parse_claims([_claim(measure=bad, criterion={"below": -1})], EXPS)


# -- steerability: the mazes moved each way, counted ----------------------------------------------------


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


# -- a small batch, end to end: its claims judged from its own numbers, checked before anything runs ------


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
    # The batch in a notebook (steer.load_run): its claims a row each, its experiments' mazes stacked.
    batch = steer.load_run(out)
    claims = batch.claims.set_index("id")
    assert list(claims.index) == ["cheese", "wrong-expectation"] and set(claims["sample"]) == {"all"}
    measured = rows["cheese"]["measured"]
    assert [claims.loc["cheese", k] for k in ("n", "estimate", "ci_low", "ci_high")] == [
        measured["n"], measured["mean"], *measured["mean_ci"]
    ]  # fmt: skip
    assert claims.loc["cheese", "wilcoxon_p_holm"] == rows["cheese"]["wilcoxon_p_holm"]
    assert claims.loc["wrong-expectation", "verdict"] == "fails" and not claims.loc["wrong-expectation", "as_expected"]
    assert batch.summary["claims"] == 2 and batch.summary["verdicts"]["fails"] >= 1
    minus = batch.experiments["minus"]
    assert minus.command == "apply" and minus.report == report
    stacked = batch.mazes
    assert list(stacked.columns[:2]) == ["run", "sample"] and set(stacked["run"]) == {"minus"}
    assert stacked.drop(columns=["run", "sample"]).equals(minus.mazes)
    assert steer.compare_runs([minus]).drop(columns="run").equals(minus.mazes)


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
