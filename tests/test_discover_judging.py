"""`steer discover`'s judging on synthetic inputs (no checkpoint, no mazes): every branch of `judge_sample`,
`choose`, `crumble_coefficient` and `final_verdicts`, each demotion shown to trigger against the same input
without its demoting condition; the screen's interval and detectable effect; the per-family statements and the
answer (`steer.analysis.discover`, `discover_screen`, `discover_confirm`, `discover_answer`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from steer.analysis.discover import EFFECTS, Candidate, Settings
from steer.analysis.discover_answer import NOT_FOUND, NOT_TESTED, answer, family_table
from steer.analysis.discover_confirm import crumble_coefficient, final_verdicts, judge_sample
from steer.analysis.discover_screen import choose, screen_families, screen_table
from steer.analysis.stats import min_detectable_effect

SETTINGS = Settings()  # margin 0.05, precision 0.1, crumble: wall mass 0.1, entropy 0.5; Holm at 0.05
P = "p_reach_cheese"


def _values(mean: float, spread: float, n: int = 24, seed: int = 0) -> np.ndarray:
    return mean + spread * np.random.default_rng(seed).standard_normal(n)


def _sample(
    effects: np.ndarray,
    controls: np.ndarray | None = None,
    floor: float = 0.0,
    wall: float = 0.0,
    entropy: float = 0.0,
) -> list[dict[str, Any]]:
    """One candidate's per-maze records on a sample, as the confirm stage's cells write them."""
    controls = np.zeros_like(effects) if controls is None else controls
    return [
        {
            "own": {P: float(e), "mean_steps": 0.0, "mean_tv": 0.1, "wall_mass": wall, "entropy": entropy},
            "control": {P: float(c)},
            "floor": {P: floor},
            "transfer": None,
        }
        for e, c in zip(effects, controls, strict=True)
    ]


HOLDS = _values(0.5, 0.05)  # effect − control about 0.5, narrow: far above the margin


# -- judge_sample --------------------------------------------------------------------------------------------


def test_judge_sample_holds() -> None:
    j = judge_sample(_sample(HOLDS), P, 1, SETTINGS)
    assert j["verdict"] == "holds" and j["why"] is None and j["n"] == len(HOLDS)
    assert j["effect_minus_control"]["mean_ci"][0] > SETTINGS.margin
    assert j["effect_minus_control"]["detectable"] == pytest.approx(min_detectable_effect(HOLDS))
    assert not j["crumbles"] and j["floor"] == 0.0


def test_judge_sample_reads_the_claimed_direction() -> None:
    """A claim "down" (sign −1) holds on changes below zero, the same numbers as "up" on their negation."""
    down = judge_sample(_sample(-HOLDS), P, -1, SETTINGS)
    assert down["verdict"] == "holds"
    assert down["effect"]["mean"] == pytest.approx(float(HOLDS.mean()))


def test_judge_sample_fails_below_the_margin() -> None:
    j = judge_sample(_sample(_values(0.01, 0.005)), P, 1, SETTINGS)
    assert j["verdict"] == "fails" and "does not exceed the random control's by 0.05" in j["why"]


def test_judge_sample_counts_the_control() -> None:
    """The same effects beside a control that moves as much: effect − control is near 0, so it fails."""
    j = judge_sample(_sample(HOLDS, controls=HOLDS - 0.01), P, 1, SETTINGS)
    assert j["verdict"] == "fails"


def test_judge_sample_inconclusive_when_a_narrow_interval_straddles_the_margin() -> None:
    j = judge_sample(_sample(_values(0.05, 0.03)), P, 1, SETTINGS)
    low, high = j["effect_minus_control"]["mean_ci"]
    assert low < SETTINGS.margin < high and (high - low) / 2 <= SETTINGS.precision
    assert j["verdict"] == "inconclusive" and "straddles the margin 0.05" in j["why"]


def test_judge_sample_underpowered_when_a_wide_interval_straddles_the_margin() -> None:
    j = judge_sample(_sample(_values(0.05, 0.6)), P, 1, SETTINGS)
    low, high = j["effect_minus_control"]["mean_ci"]
    assert low < SETTINGS.margin < high and (high - low) / 2 > SETTINGS.precision
    assert j["verdict"] == "underpowered"
    assert "straddles the margin 0.05" in j["why"] and "wider than the precision 0.1" in j["why"]


def test_judge_sample_a_wide_interval_wholly_above_the_margin_holds() -> None:
    """Direction first (steer.analysis.verdicts.verdict): wider than the precision, but wholly above the margin."""
    j = judge_sample(_sample(_values(0.6, 0.5)), P, 1, SETTINGS)
    low, high = j["effect_minus_control"]["mean_ci"]
    assert low > SETTINGS.margin and (high - low) / 2 > SETTINGS.precision
    assert j["verdict"] == "holds"


def test_judge_sample_vacuous_below_five_mazes() -> None:
    j = judge_sample(_sample(HOLDS[:4]), P, 1, SETTINGS)
    assert j["verdict"] == "vacuous" and "fewer than 5 mazes" in j["why"]
    # Crumbling does not turn a vacuous sample into a failure: nothing was measured to fail.
    assert judge_sample(_sample(HOLDS[:4], wall=0.5), P, 1, SETTINGS)["verdict"] == "vacuous"


def test_judge_sample_holds_demoted_to_fails_by_the_null_floor() -> None:
    assert judge_sample(_sample(HOLDS, floor=0.2), P, 1, SETTINGS)["verdict"] == "holds"  # a floor below it
    j = judge_sample(_sample(HOLDS, floor=0.6), P, 1, SETTINGS)
    assert j["floor"] == pytest.approx(0.6)
    assert j["verdict"] == "fails" and "null floor (0.600)" in j["why"]


@pytest.mark.parametrize(("signal", "kwargs"), [("wall mass", {"wall": 0.2}), ("entropy", {"entropy": 0.6})])
def test_judge_sample_holds_demoted_to_fails_by_crumbling(signal, kwargs) -> None:
    below = {"wall": 0.09} if "wall" in kwargs else {"entropy": 0.49}  # rises short of the thresholds 0.1, 0.5
    assert judge_sample(_sample(HOLDS, **below), P, 1, SETTINGS)["verdict"] == "holds"
    j = judge_sample(_sample(HOLDS, **kwargs), P, 1, SETTINGS)
    assert j["crumbles"], signal
    assert j["verdict"] == "fails" and "crumbles" in j["why"], signal


# -- the screen's interval and detectable effect ------------------------------------------------------------


def test_screen_table_gives_each_candidate_its_interval_and_detectable_effect() -> None:
    cand = Candidate("path:top_left", "block2.res1.resadd_out", 1.0, "remove")
    effects, controls = _values(-0.3, 0.1, n=8), _values(0.0, 0.02, n=8, seed=1)
    zero = dict.fromkeys(EFFECTS, 0.0)
    mazes = [
        {
            "effects": {cand.key: {**zero, P: float(e)}},
            "controls": {cand.key: {**zero, P: float(c)}},
            "floors": {cand.key: {**zero, P: 0.0}},
        }
        for e, c in zip(effects, controls, strict=True)
    ]
    (row,) = screen_table([cand], mazes)
    assert row["primary"] == P and row["sign"] == -1 and row["target"] == "remove"
    d = -(effects - controls)  # in the claimed direction (down)
    assert row["screen_interval"]["n"] == 8 and row["screen_interval"]["mean"] == pytest.approx(float(d.mean()))
    assert row["detectable"] == pytest.approx(min_detectable_effect(d))


# -- choose --------------------------------------------------------------------------------------------------


def _screened(
    family: str, score: float, ci: list[float] | None = None, n: int = 16, name: str = "", primary: str | None = P
) -> dict[str, Any]:
    return {
        "family": family,
        "candidate": f"{family}{name}",
        "target": "keep",
        "layer": "block2.res1.resadd_out",
        "coeff": 1.0,
        "score": score,
        "primary": primary,
        "sign": 1 if primary else None,
        "screen_interval": None if ci is None else {"n": n, "mean": sum(ci) / 2, "mean_ci": ci},
        "detectable": 0.1,
    }


STRADDLES = [0.0, 0.3]  # a screen interval that does not clear the margin 0.05
CLEARS = [0.1, 0.4]  # one that lies wholly above it


def _rows() -> list[dict[str, Any]]:
    return [
        _screened("a", 0.9, STRADDLES),
        _screened("b", 0.8, STRADDLES, name=" x 1"),
        _screened("b", 0.5, CLEARS, name=" x 2"),  # b's second candidate: not its best
        _screened("c", 0.8, STRADDLES),  # ties with b: b first, by name
        _screened("d", 0.3, CLEARS),  # below the top 3, but its interval clears the margin
        _screened("e", 0.25, CLEARS, n=4),  # clears it on 4 mazes: too few to decide
        _screened("f", 0.2, STRADDLES),
        _screened("g", 0.0, None, primary=None),  # no member on the screen's mazes
        _screened("h", 0.1, STRADDLES, name=" x 2"),  # two candidates of equal score: the first by name wins
        _screened("h", 0.1, STRADDLES, name=" x 1"),
        _screened("null:same", 1.0, CLEARS),  # the nulls are never chosen, whatever their score
    ]


def test_choose_top_k_then_every_family_whose_interval_clears_the_margin() -> None:
    rows = _rows()
    chosen = choose(rows, 3, ("null:same",), SETTINGS.margin)
    assert [r["candidate"] for r in chosen] == ["a", "b x 1", "c", "d"]
    by = {r["candidate"]: r for r in rows}
    assert [by[k]["rank"] for k in ("a", "b x 1", "c", "d", "e", "f", "h x 1")] == [1, 2, 3, 4, 5, 6, 7]
    assert by["b x 2"]["rank"] is None and by["h x 2"]["rank"] is None and by["null:same"]["rank"] is None


def test_choose_without_the_margin_rule_stops_at_the_top_k() -> None:
    """The same rows with d's interval straddling the margin: d is not added beyond the top 3."""
    rows = _rows()
    rows[4]["screen_interval"]["mean_ci"] = STRADDLES
    assert [r["candidate"] for r in choose(rows, 3, ("null:same",), SETTINGS.margin)] == ["a", "b x 1", "c"]


def test_choose_gives_every_row_its_reason() -> None:
    rows = _rows()
    choose(rows, 3, ("null:same",), SETTINGS.margin)
    why = {r["candidate"]: r["screen"] for r in rows}
    assert why["a"] == "chosen: rank 1 of 7 families, within the top 3"
    assert why["d"].startswith("chosen: rank 4 of 7 families, beyond the top 3, because its screen interval")
    assert "[+0.100, +0.400] (n 16) lies wholly above the margin 0.05" in why["d"]
    assert why["b x 2"] == "rejected: not its family's best candidate (b x 1)"
    assert why["h x 2"] == "rejected: not its family's best candidate (h x 1)"
    assert why["e"].startswith("rejected: rank 5 of 7 families, score 0.250 below the top 3's cut (0.800)")
    assert why["e"].endswith("cannot clear the margin at n 4 (fewer than 5 mazes)")
    assert why["f"].endswith("[+0.000, +0.300] (n 16) does not lie wholly above the margin 0.05")
    assert why["g"].startswith("rejected: no effect to measure")
    assert why["null:same"].startswith("null family")


def test_screen_families_says_per_family_why_it_was_or_was_not_confirmed() -> None:
    rows = _rows()
    chosen = choose(rows, 3, ("null:same",), SETTINGS.margin)
    families = screen_families(rows, chosen, ("null:same",))
    assert [f["family"] for f in families] == ["a", "b", "c", "d", "e", "f", "h", "g"]  # by rank; unranked last
    by = {f["family"]: f for f in families}
    assert by["b"]["candidate"] == "b x 1" and by["b"]["confirm"] and by["d"]["confirm"]
    assert not by["e"]["confirm"] and by["e"]["why"].startswith("not confirmed: rank 5 of 7 families")
    assert by["g"]["rank"] is None and not by["g"]["confirm"] and "no effect to measure" in by["g"]["why"]


def test_a_screen_that_skips_crumbling_takes_each_familys_strongest_candidate_that_does_not_crumble() -> None:
    rows = _rows()
    calm, wall = {"wall_mass": 0.01, "entropy": 0.1}, {"wall_mass": 0.12, "entropy": 0.1}
    for r in rows:
        r["mean_change"] = calm
    by = {r["candidate"]: r for r in rows}
    by["b x 1"]["mean_change"] = wall  # b's best crumbles: its next candidate stands for it
    by["a"]["mean_change"] = {"wall_mass": 0.0, "entropy": 0.5}  # a's only candidate crumbles (entropy at 0.5)
    kept = [r["candidate"] for r in choose(_rows(), 3, ("null:same",), SETTINGS.margin)]
    chosen = choose(rows, 3, ("null:same",), SETTINGS.margin, SETTINGS)
    assert kept[:3] == ["a", "b x 1", "c"]  # the same rows without the rule
    assert [r["candidate"] for r in chosen] == ["c", "b x 2", "d"]
    assert (
        by["b x 1"]["screen"]
        == "rejected: crumbles the policy on the screen's mazes: P(move into a wall) up 0.120 >= 0.1"
    )
    assert by["a"]["screen"].endswith("entropy up 0.500 >= 0.5 nats")
    families = {f["family"]: f for f in screen_families(rows, chosen, ("null:same",))}
    assert (
        families["a"]["rank"] is None and "every candidate with an effect to measure crumbles" in families["a"]["why"]
    )
    assert families["b"]["candidate"] == "b x 2" and families["b"]["confirm"]


# -- crumble_coefficient --------------------------------------------------------------------------------------


def _rung(wall: float = 0.0, entropy: float = 0.0) -> dict[str, float]:
    return {"wall_mass": wall, "entropy": entropy}


def test_crumble_coefficient_first_by_size_where_either_threshold_passes() -> None:
    # Two mazes; the means over them decide. Keys as the confirm stage writes them: str(sign × size).
    wall = [
        {"2.0": _rung(0.05), "1.0": _rung(), "5.0": _rung(0.3), "10.0": _rung(0.5)},
        {"2.0": _rung(0.05), "1.0": _rung(), "5.0": _rung(0.0), "10.0": _rung(0.5)},
    ]
    assert crumble_coefficient(wall, SETTINGS) == 5.0  # mean wall mass 0.15 at 5; 0.05 at 2 is not past 0.1
    entropy = [{"-1.0": _rung(entropy=0.2), "-2.0": _rung(entropy=0.8), "-5.0": _rung(0.5)}]
    assert crumble_coefficient(entropy, SETTINGS) == -2.0  # by size, with the candidate's sign
    calm = [{"1.0": _rung(0.09, 0.49), "2.0": _rung(0.05, 0.4)}]  # short of the thresholds
    assert crumble_coefficient(calm, SETTINGS) is None
    assert crumble_coefficient([], SETTINGS) is None


# -- final_verdicts -----------------------------------------------------------------------------------------


def _judged(name: str, discovery: str, replication: str, p: float | None = 0.001) -> dict[str, Any]:
    def sample(state: str) -> dict[str, Any]:
        return {
            "verdict": state,
            "why": None if state == "holds" else f"{state} here",
            "effect_minus_control": {"wilcoxon_p": p},
        }

    return {"candidate": name, "discovery": sample(discovery), "replication": sample(replication)}


def test_final_verdicts_holds_on_both_samples_is_found() -> None:
    judged = [_judged("x", "holds", "holds")]
    final_verdicts(judged, SETTINGS)
    assert judged[0]["status"] == "found" and judged[0]["why"] is None
    assert judged[0]["discovery"]["holm_p"] == pytest.approx(0.001)


def test_final_verdicts_holds_demoted_to_inconclusive_by_holm() -> None:
    alone = [_judged("x", "holds", "holds", p=0.04)]
    final_verdicts(alone, SETTINGS)
    assert alone[0]["status"] == "found"  # p 0.04 is below 0.05 on its own
    # Beside a second candidate, Holm adjusts both p-values to 0.08 (2 × 0.04): x no longer clears 0.05.
    two = [_judged("x", "holds", "holds", p=0.04), _judged("y", "fails", "fails", p=0.04)]
    final_verdicts(two, SETTINGS)
    assert two[0]["discovery"]["holm_p"] == pytest.approx(0.08)
    assert two[0]["status"] == "inconclusive" and "Holm" in two[0]["verdict_said"]
    assert two[1]["status"] == "fails"


def test_final_verdicts_holds_demoted_to_inconclusive_without_a_p_value() -> None:
    """A Wilcoxon p that is undefined (every effect equal to its control) cannot pass Holm."""
    judged = [_judged("x", "holds", "holds", p=None)]
    final_verdicts(judged, SETTINGS)
    assert judged[0]["discovery"]["holm_p"] is None and judged[0]["status"] == "inconclusive"


def test_final_verdicts_holds_and_fails_does_not_replicate() -> None:
    judged = [_judged("x", "holds", "fails")]
    final_verdicts(judged, SETTINGS)
    assert judged[0]["status"] == "does not replicate" and judged[0]["why"] == "replication: fails here"


# -- the per-family statements and the answer ---------------------------------------------------------------


def _confirmed(candidate: str, family: str, status: str, role: str = "chosen") -> dict[str, Any]:
    sample = {
        "effect": {"n": 20, "mean": 0.4, "mean_ci": [0.3, 0.5]},
        "effect_minus_control": {"n": 20, "mean": 0.38, "mean_ci": [0.28, 0.48], "detectable": 0.07},
    }
    return {
        "candidate": candidate,
        "family": family,
        "role": role,
        "status": status,
        "why": None if status == "found" else "discovery: fails here",
        "verdict_said": "",
        "primary": P,
        "direction": "down",
        "discovery": sample,
        "replication": sample,
    }


def _family_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [
        _screened("wall:ds_to_cheese", 0.9, CLEARS),
        _screened("cheese_move:to_top_right", 0.8, CLEARS),
        _screened("mouse:ds", 0.7, CLEARS),
        _screened("path:left", 0.1, STRADDLES),
        _screened("path:top", 0.05, STRADDLES),
        _screened("path:bottom", 0.0, None, primary=None),
    ]
    for r in rows[3:5]:
        r["sign"], r["detectable"] = -1, {"path:left": 0.21, "path:top": 0.09}[r["family"]]
    chosen = choose(rows, 3, (), SETTINGS.margin)
    return rows, screen_families(rows, chosen, ())


def test_family_table_states_each_family_at_the_power_it_had() -> None:
    rows, families = _family_rows()
    judged = [
        _confirmed("wall:ds_to_cheese", "wall:ds_to_cheese", "found"),
        _confirmed("cheese_move:to_top_right", "cheese_move:to_top_right", "found"),
        _confirmed("mouse:ds", "mouse:ds", "fails"),
    ]
    table = family_table(rows, families, judged)
    order = ["wall:ds_to_cheese", "cheese_move:to_top_right", "mouse:ds", "path:left", "path:top", "path:bottom"]
    assert list(table) == order
    wall, move, mouse, left = (
        table[k] for k in ("wall:ds_to_cheese", "cheese_move:to_top_right", "mouse:ds", "path:left")
    )
    assert wall["status"] == "found" and wall["new"] and wall["statement"].startswith("found, new: replication")
    assert move["status"] == "found" and not move["new"] and "contains the cheese vector" in move["statement"]
    assert mouse["status"] == "fails" and mouse["statement"].startswith("confirmed, fails (discovery: fails here)")
    assert mouse["confirm"]["replication_vs_control"]["value"] == pytest.approx(-0.38)  # the change, signed
    assert left["status"] == NOT_FOUND and not left["confirmed"]
    assert left["statement"] == (
        "not found at this power (not confirmed; screen rank 4): screen effect beyond control -0.150 "
        "[-0.300, -0.000] on P(reach the cheese) (n 16), detectable at this n: 0.210"
    )
    assert left["screen"]["effect_beyond_control"] == {
        "value": pytest.approx(-0.15),
        "ci": [-0.3, -0.0],
        "n": 16,
        "interval": "95% BCa bootstrap",
    }
    assert table["path:bottom"]["status"] == NOT_TESTED and table["path:bottom"]["screen"] is None
    assert left["place"] and left["targets"] == ["keep", "remove"] and not mouse["place"]


def test_the_answer_says_what_was_tested_and_at_what_power() -> None:
    rows, families = _family_rows()
    judged = [
        _confirmed("wall:ds_to_cheese", "wall:ds_to_cheese", "fails"),
        _confirmed("cheese_move:to_top_right", "cheese_move:to_top_right", "found"),
        _confirmed("mouse:ds", "mouse:ds", "underpowered"),
    ]
    said = answer(family_table(rows, families, judged))
    assert said.startswith("no new X-vector replicated among the 3 families confirmed (of 6 searched, 4 of them")
    assert "confirmed: 1 found, 1 underpowered, 1 fails)" in said
    assert "found but not new: cheese_move:to_top_right (its vector is cheese_at's minus the cheese vector" in said
    assert (
        "; 2 families not found at this power (smallest effects beyond the control detectable at the screen's n "
        in said
    )
    assert "n 16: 0.090–0.210)" in said and "1 not tested" in said
    rows[4]["detectable"] = 0.21  # both families not found with the same detectable effect: said once
    assert "at the screen's n 16: 0.210)" in answer(family_table(rows, families, judged))
    judged[0]["status"] = "found"
    assert answer(family_table(rows, families, judged)).startswith("yes: 1 new X-vector replicated (wall:ds_to_cheese)")
