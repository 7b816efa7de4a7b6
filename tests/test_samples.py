"""Samples of mazes: seed rules, a batch drawn again on other mazes (`--seeds`), and claims judged on a
discovery and a disjoint replication sample (steer/run/spec_values.py, steer/batch/, steer/analysis/claims.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _cli import run

import steer
from steer.analysis.verdicts import combined_verdict
from steer.batch import load_batch
from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.run.seed_rules import DrawnSeeds, parse_seeds


def test_a_seed_rule_draws_the_first_mazes_that_pass_its_filters(easy: MazeRenderer) -> None:
    levels = {s: easy.level(s) for s in range(200, 300)}
    smaller = [s for s, m in levels.items() if m.maze_dim < m.world_dim]
    with_ds = [s for s, m in levels.items() if m.decision_square() is not None and m.maze_dim in (9, 11)]
    assert parse_seeds({"from": 200, "count": 10, "where": {"smaller_than_world": True}}) == tuple(smaller[:10])
    rule = {"from": 200, "count": 6, "where": {"decision_square": True, "maze_dims": [9, 11]}}
    drawn = parse_seeds(rule)
    assert drawn == tuple(with_ds[:6]) and isinstance(drawn, DrawnSeeds) and drawn.mode == "easy"
    assert parse_seeds({"from": 5, "count": 3}) == (5, 6, 7)  # no filter: a plain range


def test_a_size_mix_comes_grouped_by_size_in_the_order_it_is_listed(easy: MazeRenderer) -> None:
    drawn = parse_seeds({"from": 0, "per_maze_dim": {13: 2, 3: 2}})
    sizes = [easy.level(s).maze_dim for s in drawn]
    assert sizes == [13, 13, 3, 3]
    firsts = [s for s in range(100) if easy.level(s).maze_dim == 13][:2]
    assert list(drawn[:2]) == firsts


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"from": 0, "count": 5, "to": 3, "where": {"smaller_than_world": True}},
            "only 4 of the 5 mazes this rule asks for are among seeds 0-3",
        ),
        ({"count": 5, "where": {"decision_square": True}}, "seeds.from: missing"),
        ({"from": 0, "where": {"decision_square": True}}, "seeds.count: missing"),
        ({"from": 0, "count": 3, "per_maze_dim": {3: 1}}, "seeds.count: 3 is not the 1 mazes"),
        ({"from": 0, "count": 3, "where": {"round": True}}, "seeds.where.round: unknown key"),
        ({"from": 0, "count": 3, "mode": "medium"}, "seeds.mode: 'medium' is not one of easy, hard"),
    ],
)
def test_a_bad_seed_rule_names_its_field(rule, message) -> None:
    with pytest.raises(SteerError, match=message):
        parse_seeds(rule)


def test_a_rule_drawn_in_one_mode_is_refused_in_a_run_of_the_other(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    rule = {"from": 0, "count": 2, "where": {"decision_square": True}}
    data = {"seeds": rule, "vector": {"kind": "cheese"}, "coeff": -1, "distribution_mode": "hard"}
    spec.write_text(yaml.safe_dump(data))
    result = run("apply", spec, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "seeds: this seed rule looked at easy-mode mazes" in result.output
    assert "add mode: hard" in result.output and not (tmp_path / "out").exists()


def _batch(tmp_path: Path, samples: dict | None, seeds: object = None, expect: str | None = "holds") -> Path:
    data = {
        "name": "two",
        "experiments": [
            {"name": "pic", "command": "apply", "spec": {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1}},
            {
                "name": "minus",
                "command": "apply",
                "spec": {
                    "seeds": seeds or {"from": 0, "count": 8, "where": {"decision_square": True}},
                    "vector": {"kind": "cheese"},
                    "coeff": -1,
                    "controls": ["random"],
                },
            },
        ],
    }
    if samples is not None:
        data["samples"] = samples
    data["claims"] = [
        {
            "id": "cheese",
            "post": "Subtracting the cheese vector makes the agent ignore cheese.",
            "setting": "8 mazes with a decision square",
            "measure": {"experiment": "minus", "metric": "p_cheese_ds", "kind": "change"},
            "criterion": {"below": -0.3},
            "control": {
                "experiment": "minus",
                "metric": "p_cheese_ds",
                "kind": "change",
                "source": "controls.random",
            },
            "expect": expect,
        }
    ]
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


SAMPLES = {"discovery": {"from": 0, "to": 99}, "replication": {"from": 300, "to": 399}}


def test_a_claim_is_judged_on_both_samples_and_pooled(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("batch", _batch(tmp_path, SAMPLES), "--out", out)
    assert result.exit_code == 0, result.output
    (row,) = json.loads((out / "claims.json").read_text())
    disc = json.loads((out / "minus" / "metrics.json").read_text())
    rep = json.loads((out / "replication" / "minus" / "metrics.json").read_text())
    seeds = [m["seed"] for m in rep["mazes"]]
    assert min(seeds) >= 300 and len(seeds) == 8 and not set(seeds) & {m["seed"] for m in disc["mazes"]}
    assert all(MazeRenderer("easy").level(s).decision_square() is not None for s in seeds)  # the same rule
    for sample, report in (("discovery", disc), ("replication", rep)):
        summary = report["summary"]["p_cheese_ds"]["change"]
        assert row[sample]["effect"]["n"] == summary["n"] and row[sample]["effect"]["mean"] == summary["mean"]
        assert row[sample]["measured"]["n"] == summary["n"]  # judged beside the control, maze by maze
    assert row["pooled"]["measured"]["n"] == row["discovery"]["measured"]["n"] + row["replication"]["measured"]["n"]
    expected, _ = combined_verdict(row["discovery"]["verdict"], row["replication"]["verdict"])
    assert row["verdict"] == expected
    batch = json.loads((out / "batch.json").read_text())
    assert batch["samples"] == {"discovery": [0, 99], "replication": [300, 399]}
    assert {e["folder"] for e in batch["experiments"]} == {"pic", "minus", "replication/pic", "replication/minus"}
    summary = (out / "summary.md").read_text()
    assert "| discovery | replication | pooled |" in summary and "Replication sample." in summary
    assert (out / "replication" / "pic" / "field-seed1.png").is_file()  # an illustration keeps its maze
    # In a notebook: a row per sample of the claim, and every experiment's mazes with its sample.
    loaded = steer.load_run(out)
    claims = loaded.claims
    assert list(claims["sample"]) == ["discovery", "replication", "pooled"]
    assert list(claims["n"]) == [row[s]["measured"]["n"] for s in ("discovery", "replication", "pooled")]
    assert list(claims["sample_verdict"].fillna("")) == [row["discovery"]["verdict"], row["replication"]["verdict"], ""]
    assert set(loaded.experiments) == {"pic", "minus", "replication/pic", "replication/minus"}
    mazes = loaded.mazes
    replicated = mazes[mazes["run"] == "replication/minus"]
    assert set(replicated["sample"]) == {"replication"} and set(replicated["seed"]) == set(seeds)


@pytest.mark.parametrize(
    ("discovery", "replication", "verdict"),
    [
        ("holds", "holds", "holds"),
        ("fails", "fails", "fails"),
        ("holds", "fails", "does not replicate"),
        ("fails", "holds", "does not replicate"),
        ("holds", "inconclusive", "inconclusive"),
        ("inconclusive", "fails", "inconclusive"),
        ("holds", "underpowered", "underpowered"),
        ("vacuous", "holds", "vacuous"),
        ("inconclusive", "inconclusive", "inconclusive"),
    ],
)
def test_holds_and_fails_need_both_samples(discovery, replication, verdict) -> None:
    got, why = combined_verdict(discovery, replication)
    assert got == verdict
    assert why == ("" if discovery == replication else f"discovery {discovery}, replication {replication}")


def test_seeds_draws_the_whole_batch_again_on_those_mazes_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    batch = _batch(tmp_path, SAMPLES, seeds={"from": 0, "to": 5}, expect=None)
    result = run("batch", batch, "--out", out, "--seeds", "500-599")
    assert result.exit_code == 0, result.output
    minus = json.loads((out / "minus" / "metrics.json").read_text())
    assert [m["seed"] for m in minus["mazes"]] == list(range(500, 506))  # a range keeps its length
    assert not (out / "replication").exists()  # this sample alone
    (row,) = json.loads((out / "claims.json").read_text())
    assert "replication" not in row and row["measured"]["n"] == minus["summary"]["p_cheese_ds"]["change"]["n"]


@pytest.mark.parametrize(
    ("samples", "seeds", "extra", "message"),
    [
        ({"discovery": {"from": 0, "to": 99}, "replication": {"from": 50, "to": 150}}, None, (), "samples overlap"),
        ({"replication": {"from": 100, "to": 199}}, None, (), "samples.discovery: missing"),
        ({"discovery": {"from": 0, "to": 3}}, None, (), "lies outside the discovery sample 0-3"),
        (SAMPLES, [0, 1, 2], (), "a list of 3 seeds names these mazes and no others"),
        (SAMPLES, {"from": 0, "to": 5}, ("--seeds", "90-2"), "--seeds: '90-2' is not a range of seeds"),
        (SAMPLES, {"from": 0, "to": 50}, ("--seeds", "500-520"), "runs past 520, the end of the sample"),
    ],
)
def test_bad_samples_are_refused_before_anything_runs(tmp_path: Path, samples, seeds, extra, message) -> None:
    out = tmp_path / "out"
    result = run("batch", _batch(tmp_path, samples, seeds), "--out", out, *extra)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()


def test_the_reproduce_batch_draws_its_replication_by_the_same_rules(easy: MazeRenderer) -> None:
    batch = load_batch(Path(__file__).resolve().parent.parent / "configs" / "reproduce.yaml")
    # The lock's fresh sample (configs/reproduce.lock), drawn after the criteria changed, not the file's 1000-1999.
    assert batch.samples == {"discovery": [0, 999], "replication": [2000, 2999]}
    pairs = {e.name: (e, r) for e, r in zip(batch.experiments, batch.replication, strict=True)}
    sweep, again = pairs["top-right-sweep"]
    assert len(sweep.spec.seeds) == len(again.spec.seeds) == 24 and min(again.spec.seeds) >= 2000
    assert all(easy.level(s).maze_dim < easy.level(s).world_dim for s in again.spec.seeds)
    transfer, moved = pairs["transfer-top-right"]
    size = lambda seeds: [easy.level(s).maze_dim for s in seeds]  # noqa: E731
    assert size(transfer.spec.seeds) == size(moved.spec.seeds) == [3, 3, 3, 5, 9, 9, 9, 11, 11, 11, 13, 13, 13]
    assert pairs["cheese-seed0"][1].spec.seeds == (0,)  # an illustration keeps its maze


def test_an_underpowered_claim_grows_its_experiments_on_both_samples_by_the_stated_steps(tmp_path: Path) -> None:
    path = _batch(tmp_path, {**SAMPLES, "grow": [2]}, expect=None)  # 8 mazes with a decision square
    data = yaml.safe_load(path.read_text())
    # A random vector's change straddles 0, and no 16 mazes are this precise: underpowered on both samples.
    claim = data["claims"][0]
    claim["measure"], claim["criterion"] = claim.pop("control"), {"above": 0, "precision": 0.0001}
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = run("batch", path, "--out", out)
    assert result.exit_code == 0, result.output
    disc = json.loads((out / "minus" / "metrics.json").read_text())
    rep = json.loads((out / "replication" / "minus" / "metrics.json").read_text())
    with_ds = [s for s in range(100) if MazeRenderer("easy").level(s).decision_square() is not None]
    assert [m["seed"] for m in disc["mazes"]] == with_ds[:16] and len(rep["mazes"]) == 16  # the same rule, twice
    assert disc["reused_cells"] == 8  # the first eight mazes were computed once
    pic = json.loads((out / "pic" / "metrics.json").read_text())
    assert len(pic["mazes"]) == 1  # an experiment no underpowered claim reads does not grow
    (row,) = json.loads((out / "claims.json").read_text())
    assert row["verdict"] == "underpowered" and row["sample_factor"] == 2
    assert row["discovery"]["measured"]["n"] == 16
    growth = json.loads((out / "batch.json").read_text())["growth"]
    assert growth["steps"] == [2] and growth["rounds"] == [
        {"factor": 2, "claims": ["cheese"], "experiments": ["minus"]}
    ]
    assert "grown to 2x their mazes" in (out / "summary.md").read_text()


def test_a_claim_precise_enough_grows_nothing(tmp_path: Path) -> None:
    path = _batch(tmp_path, {**SAMPLES, "grow": [2, 4]}, seeds={"from": 0, "to": 5}, expect=None)
    out = tmp_path / "out"
    assert run("batch", path, "--out", out).exit_code == 0
    assert json.loads((out / "batch.json").read_text())["growth"]["rounds"] == []
    assert len(json.loads((out / "minus" / "metrics.json").read_text())["mazes"]) == 6


@pytest.mark.parametrize(
    ("grow", "message"),
    [([1, 2], "samples.grow: [1, 2] is not a list of increasing whole factors"), ([4, 2], "increasing"), (3, "grow")],
)
def test_bad_growth_steps_are_refused(tmp_path: Path, grow, message) -> None:
    out = tmp_path / "out"
    result = run("batch", _batch(tmp_path, {**SAMPLES, "grow": grow}), "--out", out)
    assert result.exit_code == 2 and message in result.output and not out.exists()


def test_growth_that_would_leave_its_sample_is_refused_before_anything_runs(tmp_path: Path) -> None:
    samples = {"discovery": {"from": 0, "to": 9}, "replication": {"from": 300, "to": 399}, "grow": [2]}
    out = tmp_path / "out"
    result = run("batch", _batch(tmp_path, samples, seeds={"from": 0, "to": 5}), "--out", out)
    assert result.exit_code == 2 and "made 2 times longer runs past 9" in result.output and not out.exists()


def test_a_grown_batch_runs_again_when_a_transfer_matrix_grew(tmp_path: Path) -> None:
    # A transfer run is its whole set of mazes, so the grown matrix replaced the first one; running the batch
    # again must not find "a different run" in that folder.
    data = {
        "name": "t",
        "samples": {**SAMPLES, "grow": [2]},
        "experiments": [
            {
                "name": "tr",
                "command": "transfer",
                "spec": {
                    "seeds": {"from": 0, "count": 3, "where": {"decision_square": True}},
                    "vector": {"kind": "cheese"},
                    "coeff": -1,
                },
            }
        ],
        "claims": [
            {
                "id": "own",
                "post": "A maze's own cheese vector steers it.",
                "setting": "3 mazes",
                "measure": {"experiment": "tr", "metric": "p_cheese_ds", "kind": "change", "pairs": "own"},
                "criterion": {"below": -0.3, "precision": 0.0001, "min_n": 2},
            }
        ],
    }
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    for _ in range(2):
        result = run("batch", path, "--out", out)
        assert result.exit_code == 0, result.output
        assert len(json.loads((out / "tr" / "metrics.json").read_text())["sources"]) == 6
