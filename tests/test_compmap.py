"""`steer compose-map`: the additivity measure on arrays, a small run on the real checkpoint, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _charts import cells, intervals, nan, panels, tiles
from _tables import check_tables
from typer.testing import CliRunner

from cli.main import app
from steer.net.vectors import SteeringVector
from steer.report.compose_figs import LOW, NORM, figures
from steer.studies.compose_map import additivity_sums, prediction_errors, ratio

runner = CliRunner()
PAIR = [{"vector": {"kind": "cheese"}}, {"vector": {"kind": "top_right"}}]


def run_spec(tmp_path: Path, spec: dict) -> tuple[int, str, Path]:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    result = runner.invoke(app, ["compose-map", str(path), "--out", str(out)])
    return result.exit_code, result.output, out


def test_additivity_error_is_zero_for_a_linear_function() -> None:
    rng = np.random.default_rng(0)
    v1, v2, x = rng.normal(size=(3, 40))
    w = rng.normal(size=(40, 7))
    ss, ts = [-2.0, 0.0, 1.0, 3.0], [-1.0, 0.0, 0.5]
    values = torch.tensor(np.array([[(x + s * v1 + t * v2) @ w for t in ts] for s in ss]))
    res, joint = additivity_sums(values, 1, 1)
    errors = ratio(res.numpy(), joint.numpy())
    assert errors[1][1] is None  # Δ(0, 0) = 0
    assert all(e is None or e < 1e-9 for row in errors for e in row)
    # A nonlinear function is not additive off the axes, and still exactly 0 on them.
    res, joint = additivity_sums(torch.tanh(values), 1, 1)
    errors = ratio(res.numpy(), joint.numpy())
    assert errors[0][0] > 1e-3
    assert [errors[1][j] for j in (0, 2)] == [0.0, 0.0] and [errors[i][1] for i in (0, 2, 3)] == [0.0] * 3


def test_prediction_error_is_exact_on_the_axes() -> None:
    values = [[0.1, 0.3, 0.7], [0.2, 0.4, None], [0.9, 0.6, 0.05]]
    errors = prediction_errors(values, 1, 1)
    assert errors[1] == [0.0, 0.0, None] and [errors[0][1], errors[2][1]] == [0.0, 0.0]
    assert errors[0][0] == pytest.approx(abs((0.1 - 0.3) - (0.2 - 0.4)))
    assert errors[0][2] is None  # its (0, t) neighbour is undefined


def test_compose_map_two_mazes(tmp_path: Path) -> None:
    code, output, out = run_spec(tmp_path, {"seeds": [0, 29], "vectors": PAIR, "grid": {"s": [-1, 1], "t": [-1, 0, 1]}})
    assert code == 0, output
    check_tables(out)
    report = json.loads((out / "metrics.json").read_text())
    assert report["grid"] == {"s": [-1.0, 0.0, 1.0], "t": [-1.0, 0.0, 1.0]}  # 0 added to s
    assert report["references"] == ["self", "random"] and len(report["mazes"]) == 2
    for maze in report["mazes"]:
        assert maze["random_seed"] == maze["seed"]  # control_seed 0
        assert set(maze["combos"]) == {"pair", "self", "random"}
        for combo in maze["combos"].values():
            assert list(combo["additivity_error"]) == report["sites"]
            grids = [*combo["additivity_error"].values(), *combo["prediction_error"].values()]
            for grid in grids:
                assert len(grid) == 3 and all(len(row) == 3 for row in grid)
                assert all(grid[1][j] in (0.0, None) and grid[j][1] in (0.0, None) for j in range(3))
                assert all(v is None or 0 <= v < float("inf") for row in grid for v in row)
            assert combo["additivity_error"]["action_probs"][1][1] is None
            assert combo["additivity_error"]["action_probs"][0][0] > 0
    # Every site after the layer (flatten is relu3 again), through fc_policy, then the probabilities.
    assert report["sites"][:2] == ["action_probs", "block2.res2.relu1_out"] and len(report["sites"]) == 22
    assert "flatten" not in report["sites"] and report["sites"][-1] == "fc_policy"
    summary = report["summary"]["combos"]["pair"]["additivity_error"]["action_probs"]
    assert summary["on_axes"]["median"] == 0.0 and summary["off_axes"]["n"] == 2
    assert {p.name for p in out.glob("*.png")} == {
        "compose-map-pair.png",
        "compose-map-self.png",
        "compose-map-random.png",
        "compose-map-prediction-p_cheese_ds.png",
        "compose-map-prediction-p_top_right_ds.png",
        "compose-map-sites-pair.png",
        "compose-map-sites-self.png",
        "compose-map-sites-random.png",
        "compose-map-depth.png",
    }
    # The figures drawn again from metrics.json, read back from their axes.
    figs = figures(report, "run")
    assert set(figs) == {p.name for p in out.glob("*.png")}
    maps = report["summary"]["combos"]["pair"]["additivity_error"]
    order = [*report["sites"][1:], "action_probs"]  # network order, the probabilities last
    (ax,) = panels(figs["compose-map-sites-pair.png"])
    maps_drawn = tiles(ax)
    assert [im.get_label() for im in maps_drawn] == order
    for im, site in zip(maps_drawn, order, strict=True):
        medians = nan([c["median"] for row in maps[site]["cells"] for c in row]).reshape(3, 3)
        # The image holds the positive errors, on the one log scale shared by every tile; 0 (the axes) and
        # undefined cells are not coloured by it.
        np.testing.assert_array_equal(cells(im), np.where(medians > 0, medians, np.nan))
        assert im.norm is NORM and np.isnan(medians[1][1])
    # The pair is not additive at the output: its off-axis errors there are well inside the scale.
    probs = cells(maps_drawn[-1])
    assert np.nanmin(probs[[0, 0, 2, 2], [0, 2, 0, 2]]) > 0.1
    (ax,) = panels(figs["compose-map-pair.png"])
    np.testing.assert_array_equal(
        cells(ax), nan([c["median"] for row in maps["action_probs"]["cells"] for c in row]).reshape(3, 3)
    )
    assert -ax.images[0].get_clim()[0] == ax.images[0].get_clim()[1] == np.nanmax(np.abs(cells(ax)))
    (ax,) = panels(figs["compose-map-depth.png"])
    xs, spans = intervals(ax, report["combos"]["pair"])
    assert list(xs) == [maps[s]["off_axes"]["median"] for s in order]
    assert spans == [tuple(maps[s]["off_axes"]["median_ci"]) for s in order if maps[s]["off_axes"]["median_ci"]]


def test_composing_with_a_zero_vector_is_exactly_additive(tmp_path: Path) -> None:
    """v1 with a zero v2 (and so a zero random reference): Δ(s, t) = Δ(s, 0), so every error at every site is 0
    (None on the s = 0 row, where Δ = 0), and the per-site tiles have no coloured cell."""
    zero = SteeringVector("block2.res1.resadd_out", torch.zeros(32, 16, 16), "custom", {"note": "zero"})
    zero.save(tmp_path / "zero.pt")
    spec = {
        "seeds": [29],
        "vectors": [PAIR[0], {"vector": {"file": "zero.pt"}}],
        "grid": {"s": [-1, 1], "t": [-1, 1]},
        "references": ["random"],
    }
    code, output, out = run_spec(tmp_path, spec)
    assert code == 0, output
    report = json.loads((out / "metrics.json").read_text())
    assert len(report["sites"]) == 22
    for combo in report["mazes"][0]["combos"].values():
        for site, grid in combo["additivity_error"].items():
            assert grid[1] == [None, None, None], site  # s = 0: no change at all
            assert all(abs(v) < 1e-6 for i in (0, 2) for v in grid[i]), site
    # Every tile of the per-site figure in the scale's palest shade: no error reaches its low end.
    (ax,) = panels(figures(report, "run")["compose-map-sites-pair.png"])
    for im in tiles(ax):
        assert np.nanmax(np.nan_to_num(cells(im), nan=0.0)) <= LOW, im.get_label()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"vectors": [PAIR[0], {**PAIR[1], "layer": "block3.res1.resadd_out"}]}, "vectors[1].layer"),
        ({"vectors": PAIR, "grid": {"s": "big", "t": [0, 1]}}, "grid.s"),
        ({"vectors": PAIR, "grid": {"s": [1, "x"]}}, "grid.s[1]"),
        ({"vectors": PAIR, "grid": [1, 2]}, "grid"),
        ({"vectors": [{**PAIR[0], "coeff": -1}, PAIR[1]]}, "vectors[0].coeff"),
        ({"vectors": PAIR[:1]}, "vectors"),
        ({"vectors": PAIR, "references": ["other"]}, "references[0]"),
        ({"vectors": PAIR, "sites": ["block1.conv"]}, "sites[0]"),
    ],
)
def test_compose_map_bad_input(tmp_path: Path, spec: dict, field: str) -> None:
    code, output, out = run_spec(tmp_path, {"seeds": [0], **spec})
    assert code == 2, output
    assert f"{field}:" in output
    assert not out.exists()


def test_compose_map_cell_matches_compose(tmp_path: Path) -> None:
    """The batched suffix gives what `steer compose` (hooks on a full forward pass) gives for the cell (1, -1)."""
    code, output, out = run_spec(tmp_path, {"seeds": [29], "vectors": PAIR, "grid": {"s": [1], "t": [-1]}})
    assert code == 0, output
    cell = json.loads((out / "metrics.json").read_text())["mazes"][0]["combos"]["pair"]["behaviour"]
    spec = tmp_path / "compose.yaml"
    spec.write_text(yaml.safe_dump({"seeds": [29], "vectors": [{**PAIR[0], "coeff": 1}, {**PAIR[1], "coeff": -1}]}))
    result = runner.invoke(app, ["compose", str(spec), "--out", str(tmp_path / "compose")])
    assert result.exit_code == 0, result.output
    maze = json.loads((tmp_path / "compose" / "metrics.json").read_text())["mazes"][0]
    for name in ("p_cheese_ds", "p_top_right_ds"):
        assert cell[name][1][0] == pytest.approx(maze[name]["patched"], abs=1e-5)  # s = 1, t = -1
        assert cell[name][0][1] == pytest.approx(maze[name]["original"], abs=1e-5)  # s = 0, t = 0


def test_compose_map_records_a_vector_file_beside_the_spec(tmp_path: Path) -> None:
    """A relative vector file is found beside the spec and recorded (path, sha256) in the run's inputs."""
    path = tmp_path / "vec.yaml"
    path.write_text(yaml.safe_dump({"seeds": [2], "vector": {"kind": "cheese"}}))
    assert runner.invoke(app, ["compute-vector", str(path), "--out", str(tmp_path / "vecs")]).exit_code == 0
    spec = {
        "seeds": [29],
        "vectors": [{"vector": {"file": "vecs/vector-cheese-seed2.safetensors"}}, PAIR[1]],
        "grid": {"s": [1]},
    }
    code, output, out = run_spec(tmp_path, spec)
    assert code == 0, output
    report = json.loads((out / "metrics.json").read_text())
    assert [Path(i["path"]).name for i in report["provenance"]["inputs"]] == ["vector-cheese-seed2.safetensors"]
    assert report["vectors"][0]["source_seed"] == 2 and report["grid"]["t"] == [-2, -1, -0.5, 0, 0.5, 1, 2]
