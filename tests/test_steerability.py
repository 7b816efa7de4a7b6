"""`steer steerability`: the class rule on constructed curves, the exact curve against `apply`'s numbers at the same
coefficients (a field target and a behaviour target, on the real checkpoint), a zero vector's zero steerability,
the predictors' held-out R² on known data, and bad specs refused with exit 2 and no output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from _cli import run, write_spec
from _harness import LAYER, save_vector_file
from _tables import check_tables

from steer.analysis.steerability import Curve, Rule, read_curve
from steer.analysis.steerability_predictors import held_out_errors, increment, r2_of, rank_test

GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)
CALM = (0.05,) * 5  # crumbling measures that never rise


def _curve(p: tuple[float | None, ...], wall: tuple[float, ...] = CALM, entropy: tuple[float, ...] = CALM) -> Curve:
    return Curve(GRID, p, wall, entropy)


# -- the class rule on constructed curves ------------------------------------------------------------


def test_a_curve_rising_the_claimed_way_is_claimed_and_its_slope_is_the_log_odds_slope() -> None:
    p = tuple(1 / (1 + np.exp(-2 * c)) for c in GRID)  # log-odds exactly 2c
    got = read_curve(_curve(p), Rule())
    assert got["class"] == "claimed" and got["claimed_way"] == 1 and got["anti_steerable"] == 0
    assert got["slope"] == pytest.approx(2.0) and got["steerability"] == pytest.approx(2.0)
    assert got["residual"] == pytest.approx(0.0, abs=1e-9)
    assert got["crumble_pos"] is None and got["crumble_neg"] is None and got["crumbles"] == 0
    # The same curve claimed the other way is anti-steerable, with the steerability's sign turned.
    down = read_curve(_curve(p), Rule(direction=-1))
    assert down["class"] == "anti" and down["anti_steerable"] == 1 and down["steerability"] == pytest.approx(-2.0)


def test_a_flat_curve_is_not_moved_and_crumbling_first_is_flagged() -> None:
    flat = read_curve(_curve((0.5,) * 5), Rule())
    assert flat["class"] == "not_moved" and flat["steerability"] == 0 and flat["crumbles_before_moving"] == 0
    # It moves only at |c| = 1, where the walls rise by 0.2 on both sides: it crumbles before it moves.
    p = (0.1, 0.5, 0.5, 0.5, 0.9)
    wall = (0.25, 0.05, 0.05, 0.05, 0.25)
    got = read_curve(_curve(p, wall=wall), Rule())
    assert (got["crumble_neg"], got["crumble_pos"]) == (-1.0, 1.0) and got["non_crumbling"] == [-0.5, 0.5]
    assert got["class"] == "not_moved" and got["crumbles_before_moving"] == 1
    # An entropy rise crumbles too; a rise below the thresholds does not.
    assert read_curve(_curve(p, entropy=(0.05, 0.05, 0.05, 0.05, 0.6)), Rule())["crumble_pos"] == 1.0
    assert read_curve(_curve(p, wall=(0.1, 0.05, 0.05, 0.05, 0.14)), Rule())["class"] == "claimed"


def test_moved_is_the_change_across_the_non_crumbling_range_against_the_threshold() -> None:
    p = (0.48, 0.49, 0.5, 0.51, 0.52)  # 0.04 across the range
    assert read_curve(_curve(p), Rule(moved=0.05))["class"] == "not_moved"
    assert read_curve(_curve(p), Rule(moved=0.03))["class"] == "claimed"
    assert read_curve(_curve(p), Rule(moved=0.03))["moved_by"] == pytest.approx(0.04)


def test_a_curve_that_rises_and_falls_back_is_not_moved_but_counted_as_moving_and_returning() -> None:
    # The ends of the range agree, so the class says not moved; in between P rose by 0.3 from P(0).
    hump = read_curve(_curve((0.5, 0.8, 0.5, 0.8, 0.5)), Rule())
    assert hump["class"] == "not_moved" and hump["moves_and_returns"] == 1
    # A flat curve, and a claimed one, are not counted: the flag is about "not moved" only.
    assert read_curve(_curve((0.5,) * 5), Rule())["moves_and_returns"] == 0
    assert read_curve(_curve((0.1, 0.3, 0.5, 0.7, 0.9)), Rule())["moves_and_returns"] == 0
    # Only the non-crumbling range counts: the same swing at a crumbling coefficient is not a move.
    edge = read_curve(_curve((0.5, 0.5, 0.5, 0.5, 0.9), wall=(0.05, 0.05, 0.05, 0.05, 0.3)), Rule())
    assert edge["class"] == "not_moved" and edge["moves_and_returns"] == 0


def test_an_undefined_target_gives_no_class_but_keeps_the_crumbling() -> None:
    got = read_curve(_curve((None,) * 5, wall=(0.05, 0.05, 0.05, 0.05, 0.3)), Rule())
    assert got["class"] is None and got["steerability"] is None and got["crumble_pos"] == 1.0


# -- predictors --------------------------------------------------------------------------------------


def test_a_predictor_that_sets_steerability_has_held_out_r2_near_one_and_noise_adds_nothing() -> None:
    rng = np.random.default_rng(3)
    size = rng.integers(5, 25, 40).astype(float)
    noise = rng.normal(size=40)
    y = 0.5 * size + rng.normal(scale=0.1, size=40)
    assert r2_of(held_out_errors(size[:, None], y), y) > 0.95
    test = rank_test(size, y)
    assert test["rho"] > 0.9 and test["p"] < 1e-6 and test["rho_ci"][0] > 0.8
    extra = increment(size, noise, y)  # noise beyond the size: no gain, and an interval that says so
    assert extra["value"] < 0.01 and extra["ci"][0] < 0.005
    real = increment(noise, size, y)  # the size beyond noise: nearly all of it
    assert real["value"] > 0.9 and real["ci"][0] > 0.8 and real["n"] == 40
    own = increment(size, np.ones(40), y)  # each maze's own vector: a cosine of 1 everywhere adds nothing to test
    assert own["value"] is None and own["ci"] is None and "constant" in own["why"]


# -- the real checkpoint -----------------------------------------------------------------------------


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """apply at +1 with the exact chain's P(reach the cheese), and steerability of the same vector (a field target
    and a behaviour target) on the same two mazes at few coefficients, +1 among them."""
    tmp = tmp_path_factory.mktemp("steerability")
    base = {"seeds": [0, 1], "vector": {"kind": "cheese", "source_seed": 0}}
    out = {}
    specs = {
        "apply": ("apply", {**base, "name": "a", "coeff": 1, "metrics": ["p_reach_cheese"]}),
        "field": ("steerability", {**base, "name": "f", "coeffs": [-1, -0.5, 0.5, 1]}),
        "chain": ("steerability", {**base, "name": "c", "coeffs": [-1, 1], "target": "p_reach_cheese"}),
    }
    for key, (command, spec) in specs.items():
        folder = tmp / key
        result = run(command, write_spec(tmp, spec, f"{key}.yaml"), "--out", folder, "--workers", 1)
        assert result.exit_code == 0, result.output
        out[key] = {"folder": folder, **_metrics(folder)}
    return out


def test_the_exact_curve_equals_apply_at_the_same_coefficient(runs: dict[str, dict]) -> None:
    applied = {m["seed"]: m for m in runs["apply"]["mazes"]}
    for key, target in (("field", "p_cheese_ds"), ("chain", "p_reach_cheese")):
        coeffs = runs[key]["coeffs"]
        assert 0.0 in coeffs and runs[key]["target"] == target
        for m in runs[key]["mazes"]:
            row, a = m["by_layer"][0], applied[m["seed"]]
            at_one, at_zero = coeffs.index(1.0), coeffs.index(0.0)
            # Bit for bit: the same products c x vector added at the same site, the same suffix.
            assert row["p"][at_one] == a[target]["patched"] and row["p"][at_zero] == a[target]["original"]
            if key == "field":  # the crumbling measures, in the maze's own facing, are apply's too
                assert row["wall_mass"][at_one] == a["wall_mass"]["patched"]
                assert row["entropy"][at_one] == a["entropy"]["patched"]


def test_tables_hold_a_row_per_maze_site_and_coefficient(runs: dict[str, dict]) -> None:
    folder, report = runs["field"]["folder"], runs["field"]
    check_tables(folder)  # every value in the tables is one the run recorded, in its declared columns
    rows = list(csv.DictReader((folder / "mazes.csv").open()))
    assert len(rows) == 2 * 5 and {r["site"] for r in rows} == {LAYER}
    summary = list(csv.DictReader((folder / "steerability.csv").open()))
    assert [int(r["seed"]) for r in summary] == [0, 1]
    first = report["mazes"][0]["by_layer"][0]
    assert float(summary[0]["steerability"]) == pytest.approx(first["steerability"])
    # The vector is seed 0's own: its cosine with seed 0's own vector is 1, with seed 1's less.
    cosines = [m["by_layer"][0]["cosine"] for m in report["mazes"]]
    assert cosines[0] == pytest.approx(1.0, abs=1e-9) and abs(cosines[1]) < 0.99
    site = report["summary"]["by_layer"][0]
    assert site["layer"] == LAYER and site["n"] + site["undefined"] == 2
    for key in ("anti_steerable", "not_moved", "crumbles_before_moving"):
        assert set(site[key]) >= {"value", "ci", "n"}  # what a batch's `reported` claim reads


def test_a_zero_vector_has_zero_steerability_and_moves_no_maze(tmp_path: Path) -> None:
    vec = save_vector_file(tmp_path / "zero.pt")
    spec = {"name": "z", "seeds": [0, 1], "vector": {"file": str(vec)}, "coeffs": [-1, 1]}
    result = run("steerability", write_spec(tmp_path, spec), "--out", tmp_path / "z", "--workers", 1)
    assert result.exit_code == 0, result.output
    rows = [m["by_layer"][0] for m in _metrics(tmp_path / "z")["mazes"]]
    defined = [r for r in rows if r["class"] is not None]
    assert defined and all(r["steerability"] == 0 and r["class"] == "not_moved" for r in defined)
    assert all(r["crumbles"] == 0 for r in rows)
    assert _metrics(tmp_path / "z")["summary"]["by_layer"][0]["not_moved"]["value"] == 1.0


def test_on_cheese_removed_mazes_the_top_right_vector_follows_the_share_of_the_episode_in_its_region(
    tmp_path: Path, policy, easy
) -> None:
    from steer.analysis.discover import exact_numbers
    from steer.maze.families import regions
    from steer.net.vfield import facing_field, facing_inputs

    spec = {"name": "tr", "seeds": [0], "vector": {"kind": "top_right"}, "target_edits": ["remove_cheese"],
            "coeffs": [-1, 1]}  # fmt: skip
    result = run("steerability", write_spec(tmp_path, spec), "--out", tmp_path / "tr", "--workers", 1)
    assert result.exit_code == 0, result.output
    report = _metrics(tmp_path / "tr")
    assert report["target"] == "time_in_top_right" and report["rule"]["direction"] == "up"
    row = report["mazes"][0]["by_layer"][0]
    assert all(0 <= p <= 1 for p in row["p"])
    maze = easy.level(0).without_cheese()  # the unpatched share, as discover measures it
    unpatched = exact_numbers(facing_field(policy, facing_inputs(easy, maze)), regions(maze))
    assert row["p"][report["coeffs"].index(0.0)] == pytest.approx(unpatched["time_in_top_right"], abs=1e-9)


BAD = {
    "unknown target": ({"target": "p_win"}, "target: 'p_win' is not a target steerability can follow"),
    "cheese target on cheese-removed mazes": (
        {"target_edits": ["remove_cheese"], "vector": {"kind": "top_right"}, "target": "p_reach_cheese"},
        "target: p_reach_cheese is undefined on mazes with the cheese removed",
    ),
    "top-right DS target on cheese-removed mazes": (
        {"target_edits": ["remove_cheese"], "vector": {"kind": "top_right"}, "target": "p_top_right_ds"},
        "target: p_top_right_ds is undefined on mazes with the cheese removed",
    ),
    "empty coeffs": ({"coeffs": []}, "coeffs: the list is empty"),
    "coeffs on one side of 0": ({"coeffs": [0.5, 1, 2]}, "coeffs: steerability is the slope near 0"),
    "layer and layers": ({"layer": LAYER, "layers": [LAYER]}, "layers: give either `layer`"),
    "custom vector without a target": (
        {"vector": {"kind": "custom", "a": [{"cheese": [1, 1]}], "b": []}},
        "target: a custom vector has no natural target",
    ),
    "unknown direction": ({"direction": "sideways"}, "direction: 'sideways' is not one of up, down"),
    "moved out of range": ({"moved": 2}, "moved: 2 is out of range"),
    "unknown site in layers": ({"layers": [LAYER, "block9.conv"]}, "layers[1]: 'block9.conv' is not a hook point"),
    "layers: all": ({"layers": "all"}, "layers: 'all' is not taken here"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_specs_exit_2_with_one_message_and_no_output(tmp_path: Path, case: str) -> None:
    change, message = BAD[case]
    spec = {"name": "bad", "seeds": [0], "vector": {"kind": "cheese"}, **change}
    out = tmp_path / "out"
    result = run("steerability", write_spec(tmp_path, spec), "--out", out, "--workers", 1)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_vector_file_with_several_layers_is_refused(tmp_path: Path) -> None:
    vec = save_vector_file(tmp_path / "zero.pt")
    spec = {"name": "bad", "seeds": [0], "vector": {"file": str(vec)}, "layers": [LAYER, "block3.res1.resadd_out"]}
    result = run("steerability", write_spec(tmp_path, spec), "--out", tmp_path / "out", "--workers", 1)
    assert result.exit_code == 2 and "layers: a vector file holds one site's vector" in result.output
    assert not (tmp_path / "out").exists()
