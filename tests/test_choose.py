"""`steer choose` on the real checkpoint: the choice looks at the discovery mazes alone (other replication mazes, the
same grid and choice), it respects the limits, no feasible setting is a clear result, the replication records are
what a batch's claims read, and bad input exits 2 with nothing written. Small mazes, --workers 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _cli import run, write_spec
from _harness import save_vector_file
from _tables import check_tables
from safetensors import safe_open

from steer.analysis.choose import Goal, Setting, choose, grid_rows
from steer.analysis.claim_measures import measure
from steer.net.vectors import SteeringVector

SPEC = {
    "name": "choose",
    "seeds": [0, 14, 29, 33],  # 3x3 to 5x5 mazes with a decision square: cheap
    "replication": [1010, 1018],
    "vector": {"kind": "cheese"},
    "layers": ["block2.res1.resadd_out", "block3.res1.resadd_out"],
    "coeffs": [-1, -3],
    "limits": {"wall_mass": 0.45, "p_timeout": 0.5},
}
OTHER_REPLICATION = [1026, 1034]


def _run(folder: Path, spec: dict, name: str) -> Path:
    out = folder / name
    result = run("choose", write_spec(folder, spec, f"{name}.yaml"), "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same choice asked twice, with different replication mazes."""
    folder = tmp_path_factory.mktemp("choose")
    return _run(folder, SPEC, "a"), _run(folder, {**SPEC, "replication": OTHER_REPLICATION}, "b")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_choice_never_looks_at_the_replication_mazes(runs: tuple[Path, Path]) -> None:
    a, b = runs
    ra, rb = _json(a / "metrics.json"), _json(b / "metrics.json")
    assert [m["seed"] for m in ra["mazes"]] == [1010, 1018] and [m["seed"] for m in rb["mazes"]] == [1026, 1034]
    assert ra["mazes"] != rb["mazes"]  # the replication records did change...
    assert ra["choice"] == rb["choice"] and ra["grid"] == rb["grid"]  # ...the grid and the choice did not
    assert (a / "choice.json").read_bytes() == (b / "choice.json").read_bytes()
    assert (a / "grid.csv").read_bytes() == (b / "grid.csv").read_bytes()
    assert (a / "chosen-vector.safetensors").read_bytes() == (b / "chosen-vector.safetensors").read_bytes()
    # The grid stage ran on the discovery mazes alone, and the choice records the seeds it looked at.
    grid = _json(a / "grid" / "manifest.json")
    assert sorted(int(k.removeprefix("seed-")) for k in grid["cells"]) == SPEC["seeds"]
    assert ra["choice"]["seeds_looked_at"] == SPEC["seeds"]
    assert ra["choice"]["vector"]["source_seeds"] == SPEC["seeds"]  # a bare kind: the mean over discovery mazes


def test_the_chosen_setting_is_the_best_that_meets_every_limit(runs: tuple[Path, Path]) -> None:
    report = _json(runs[0] / "metrics.json")
    grid, chosen = report["grid"], report["choice"]["setting"]
    assert len(grid) == 4 and chosen is not None
    limits = SPEC["limits"]
    for row in grid:
        ok = all(row["damage"][k]["mean_ci"][1] <= v for k, v in limits.items())
        assert row["feasible"] == ok
    feasible = [r for r in grid if r["feasible"]]
    best = max(feasible, key=lambda r: r["objective"])
    assert (best["site"], best["coeff"]) == (chosen["site"], chosen["coeff"])
    assert any(not r["feasible"] for r in grid)  # the limits bite on this grid
    vec = SteeringVector.load(runs[0] / "chosen-vector.safetensors")
    assert (vec.layer, vec.meta["coeff"], vec.kind) == (chosen["site"], chosen["coeff"], "cheese")
    # A file others read without steer: the setting is in its safetensors header.
    with safe_open(runs[0] / "chosen-vector.safetensors", "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    assert (f"{meta['coeff']:g}", meta["goal"]["target"]) == (f"{chosen['coeff']:g}", "p_cheese_ds")


def test_a_tight_limit_excludes_the_setting_the_unconstrained_choice_picks(runs: tuple[Path, Path]) -> None:
    """On the grid stage's own per-maze records: with no limits one setting wins; a wall_mass limit just below its
    interval's upper end excludes it, and what is chosen then meets the limit."""
    records = [m["records"] for m in _json(runs[0] / "grid" / "metrics.json")["mazes"]]
    settings = [Setting(s, c) for s in SPEC["layers"] for c in SPEC["coeffs"]]
    damages = ("wall_mass", "entropy")
    free = grid_rows(records, settings, Goal("p_cheese_ds", -1, "mean_change", {}), damages)
    first = choose(free)
    assert first is not None and all(r["feasible"] for r in free)
    limit = free[first]["damage"]["wall_mass"]["mean_ci"][1] - 1e-6
    tight = grid_rows(records, settings, Goal("p_cheese_ds", -1, "mean_change", {"wall_mass": limit}), damages)
    second = choose(tight)
    assert not tight[first]["feasible"] and second != first
    if second is not None:
        assert tight[second]["damage"]["wall_mass"]["mean_ci"][1] <= limit


def test_the_replication_records_are_what_a_batch_claim_reads(runs: tuple[Path, Path]) -> None:
    a = runs[0]
    check_tables(a)
    report = _json(a / "metrics.json")
    gain = {"experiment": "c", "metric": "p_cheese_ds", "kind": "versus", "source": "chosen"}
    gain["minus"] = {"experiment": "c", "metric": "p_cheese_ds", "kind": "change", "source": "reference"}
    got = measure({"c": report}, gain)
    # The claim measures chosen minus reference as a raw change; the report's gain is in the wanted way (down).
    mine = report["replication"]["chosen_minus_reference"]["gain"]
    assert got["n"] == mine["n"] == 2
    assert got["mean"] == pytest.approx(-mine["value"], abs=1e-12)
    crumble = {**gain, "metric": "wall_mass", "minus": {**gain["minus"], "metric": "wall_mass"}}
    excess = report["replication"]["chosen_minus_reference"]["wall_mass_excess"]
    assert measure({"c": report}, crumble)["mean"] == pytest.approx(excess["value"], abs=1e-12)


def test_no_setting_within_the_limits_is_a_result_not_a_crash(tmp_path: Path) -> None:
    spec = {**SPEC, "seeds": [0, 14], "layers": ["block2.res1.resadd_out"], "coeffs": [-3], "limits": {"wall_mass": 0}}
    out = _run(tmp_path, spec, "none")
    report = _json(out / "metrics.json")
    assert report["choice"]["setting"] is None and "none chosen" in report["choice"]["said"]
    assert report["replication"]["chosen_minus_reference"] is None
    assert all(m["chosen"] is None and m["reference"] is not None for m in report["mazes"])
    assert not (out / "chosen-vector.safetensors").exists() and (out / "choice.json").exists()
    claim = {"experiment": "c", "metric": "p_cheese_ds", "kind": "change", "source": "chosen"}
    got = measure({"c": report}, claim)
    assert got["n"] == 0 and got["excluded"] == {"no chosen record": 2}  # the claim then has nothing to hold on


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replication": [0, 1000]}, "replication: seed 0 is also in seeds"),
        ({"limits": {"wall_mass": float("inf")}}, "limits: wall_mass is inf; a limit is a finite number"),
        ({"limits": {"wall_mass": float("nan")}}, "limits: wall_mass is nan; a limit is a finite number"),
        ({"limits": {"crumble": 0.1}}, "limits: 'crumble' is not a damage measure."),
        ({"limits": {"mean_tv_unaffected": 0.1}}, "limits: mean_tv_unaffected needs `unaffected:`"),
        ({"coeffs": [0, 1]}, "coeffs: 0 is not a setting to choose"),
        ({"target": "mean_tv"}, "target: 'mean_tv' is not a metric a setting changes"),
        ({"layers": ["block2.res1.resadd_out", "block9.nowhere"]}, "layers[1]: 'block9.nowhere' is not a hook point"),
        ({"compare_with": {"layer": "nowhere"}}, "compare_with.layer: 'nowhere' is not a hook point"),
    ],
    ids=["overlap", "inf", "nan", "measure", "tv-without-variant", "zero", "target", "site", "reference-site"],
)
def test_bad_input_exits_2_with_nothing_written(tmp_path: Path, change: dict, message: str) -> None:
    out = tmp_path / "out"
    result = run("choose", write_spec(tmp_path, {**SPEC, **change}), "--out", out)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists()


def _batch(folder: Path, samples: dict | None) -> Path:
    spec = {**SPEC, "seeds": [0, 14], "layers": ["block2.res1.resadd_out"], "limits": {"wall_mass": 0.45}}
    if samples:  # drawn again on the batch's replication sample, by ranges
        spec |= {"seeds": {"from": 0, "to": 3}, "replication": {"from": 2000, "to": 2001}}
    versus = {"experiment": "pick", "kind": "versus", "source": "chosen"}
    gain = {**versus, "metric": "p_cheese_ds"}
    gain["minus"] = {"experiment": "pick", "metric": "p_cheese_ds", "kind": "change", "source": "reference"}
    crumble = {**versus, "metric": "wall_mass"}
    crumble["minus"] = {"experiment": "pick", "metric": "wall_mass", "kind": "change", "source": "reference"}
    claim = {
        "id": "chosen-beats-reference",
        "post": "The chosen setting lowers P(cheese | DS) more than the posts' without more crumbling.",
        "setting": "steer choose on 2 discovery mazes, judged on its 2 replication mazes",
        "measure": gain,
        "criterion": {"statistic": "mean", "below": 0, "precision": 0.5},
        "precondition": {
            "measure": crumble,
            "criterion": {"statistic": "mean", "below": 0.05},
            "reason": "the chosen setting crumbles no more than the reference",
        },
    }
    batch = {"name": "picks", "experiments": [{"name": "pick", "command": "choose", "spec": spec}], "claims": [claim]}
    if samples:
        batch["samples"] = samples
    return write_spec(folder, batch, "picks.yaml")


def test_a_batch_judges_the_choice_on_its_own_replication_sample_and_seals_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("batch", _batch(tmp_path, None), "--out", out, "--workers", "1")
    assert result.exit_code in (0, 1), result.output  # 1: a verdict differs from an `expect:` (none here)
    report = _json(out / "pick" / "metrics.json")
    (row,) = _json(out / "claims.json")
    assert row["measured"]["n"] == 2 and not (out / "replication").exists()
    gain = report["replication"]["chosen_minus_reference"]["gain"]
    assert row["measured"]["mean"] == pytest.approx(-gain["value"], abs=1e-12)
    # The lock records the experiment's own replication sample before it was measured.
    lock = _json(tmp_path / "picks.lock")
    assert json.dumps(SPEC["replication"]) in json.dumps(lock)
    # The same experiment in a batch without claims (configs/gallery.yaml): no criteria, so nothing to seal.
    plain = yaml.safe_load((tmp_path / "picks.yaml").read_text())
    del plain["claims"]
    plain["name"] = "plain"
    result = run("batch", write_spec(tmp_path, plain, "plain.yaml"), "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "plain.lock").exists()


def test_a_batch_refuses_a_choose_experiment_beside_its_own_replication_sample(tmp_path: Path) -> None:
    samples = {"discovery": {"from": 0, "to": 99}, "replication": {"from": 1000, "to": 1099}}
    out = tmp_path / "out"
    result = run("batch", _batch(tmp_path, samples), "--out", out)
    assert result.exit_code == 2, result.output
    assert "experiment 'pick' (choose) draws its own replication sample" in " ".join(result.output.split())
    assert not out.exists()


def test_a_vector_file_holds_one_site_so_the_grid_and_the_reference_must_be_there(tmp_path: Path) -> None:
    file = save_vector_file(tmp_path / "v.pt")  # a (zero) cheese vector at block2.res1.resadd_out
    base = {**SPEC, "vector": {"file": str(file)}}
    for change, message in (
        ({}, "layers[1]: 'block3.res1.resadd_out' is not block2.res1.resadd_out, the only site the vector file"),
        (
            {"layers": ["block2.res1.resadd_out"], "compare_with": {"layer": "block3.res1.resadd_out"}},
            "compare_with.layer: the reference site block3.res1.resadd_out is not block2.res1.resadd_out",
        ),
    ):
        out = tmp_path / "out"
        result = run("choose", write_spec(tmp_path, {**base, **change}), "--out", out)
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()) and not out.exists()


def test_a_choice_at_the_grids_edge_says_a_stronger_setting_may_do_better() -> None:
    from steer.studies.choose import _at_edge

    assert "largest coefficient" in _at_edge(5, [0.5, 1, 5]) and "largest coefficient" in _at_edge(-2, [-2, -1, 1])
    assert _at_edge(1, [0.5, 1, 5]) == "" and _at_edge(-1, [-1, 3]) == ""  # inside the grid; alone on its side
