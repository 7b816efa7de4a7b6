"""Probes and the activations store: planted features are recovered, shuffled ones are not, folds keep a maze's
rows together, maze features are right on real mazes, and both commands run end to end on the real checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from _charts import bar_ends, panels, references
from _cli import run
from _tables import check_tables

from steer.analysis.probing import channel_correlations, out_of_fold, probe
from steer.maze.env import MazeRenderer
from steer.maze.features import corner_distance, feature_rows, top_right_most
from steer.maze.layout import WALL
from steer.studies.probe import channel_chart, depth_chart


def planted(mazes: int = 60, rows: int = 3, dims: int = 50, noise: float = 0.05) -> tuple[np.ndarray, ...]:
    """Activations = feature × w + noise, several rows per maze; the feature is one value per maze."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(mazes), rows)
    y = np.repeat(rng.normal(size=mazes), rows)
    w = rng.normal(size=dims)
    x = y[:, None] * w[None, :] + noise * rng.normal(size=(len(y), dims))
    return x, y, groups


def test_planted_feature_is_recovered_and_shuffled_one_is_not() -> None:
    x, y, groups = planted()
    r = probe(x, y, groups, "continuous", 5)
    assert r["score"] > 0.98 and r["ci"][0] > 0.95
    assert r["mazes"] == 60 and r["rows"] == 180 and r["folds"] == 5
    assert abs(r["shuffled"]["score"]) < 0.3  # the control: no link, no score
    noise = np.random.default_rng(2).normal(size=y.shape)
    r0 = probe(x, noise, groups, "continuous", 5)
    assert r0["score"] < 0.2


def test_categorical_probe_scores_accuracy_against_chance() -> None:
    x, y, groups = planted()
    label = (y > 0).astype(float)
    r = probe(x, label, groups, "categorical", 5)
    assert r["metric"] == "accuracy" and r["score"] > 0.9 and 0.4 < r["chance"] < 0.7


def test_group_folds_keep_a_mazes_rows_together() -> None:
    # A feature that is pure per-maze noise is learnable from held-out squares of the same maze (each maze has
    # its own activation offset) but not from held-out mazes: only GroupKFold gives the honest ~0.
    rng = np.random.default_rng(3)
    mazes, rows = 40, 5
    groups = np.repeat(np.arange(mazes), rows)
    offsets = rng.normal(size=(mazes, 30))
    x = offsets[groups] + 0.01 * rng.normal(size=(mazes * rows, 30))
    y = np.repeat(rng.normal(size=mazes), rows)
    assert probe(x, y, groups, "continuous", 5)["score"] < 0.3
    ungrouped = out_of_fold(x, y, np.arange(len(y)), "continuous", 5)  # every row its own "maze"
    assert 1 - ((y - ungrouped) ** 2).sum() / ((y - y.mean()) ** 2).sum() > 0.5


def test_undefined_or_constant_features_are_skipped_with_a_reason() -> None:
    x, y, groups = planted(mazes=4)
    assert "skipped" in probe(x, np.full_like(y, 3.0), groups, "continuous", 5)
    only_one = np.where(groups == 0, 1.0, np.nan)
    assert "1 maze" in probe(x, only_one, groups, "continuous", 5)["skipped"]


def test_channel_correlations_of_spatial_means() -> None:
    y = np.arange(10, dtype=float)
    x = np.zeros((10, 3, 2, 2))
    x[:, 0] = y[:, None, None]  # channel 0 follows the feature, channel 1 opposes it, channel 2 is constant
    x[:, 1] = -y[:, None, None]
    corr = channel_correlations(x, y)
    assert corr[0] == pytest.approx(1.0) and corr[1] == pytest.approx(-1.0) and corr[2] is None


@pytest.fixture(scope="module")
def renderer() -> MazeRenderer:
    return MazeRenderer("easy")


def test_features_on_real_mazes(renderer: MazeRenderer) -> None:
    # Seed 0: a 3x3 maze in the 15x15 world (margin 6), inner top-right square (8, 8).
    maze = renderer.level(0)
    assert maze.maze_dim == 3 and maze.top_right_square == (8, 8)
    assert top_right_most(maze, maze.start_square) == (8, 8)
    assert corner_distance(maze, (8, 8)) == 12  # (14 - 8) + (14 - 8)
    squares = [sq for sq in maze.open_squares() if sq != maze.cheese]
    rows = feature_rows(maze, 0, squares)
    assert {r["top_right_reachable_corner_dist"] for r in rows} == {12.0}
    tr = maze.top_right_square
    at_tr = next(r for r in rows if (r["mouse_row"], r["mouse_col"]) == tr)
    assert at_tr["dist_to_top_right"] == 0.0
    assert rows[0]["dist_to_cheese"] == len(maze.shortest_path(squares[0], maze.cheese)) - 1
    # What holds on real mazes: the inner top-right square is open, so the distance is world_dim - maze_dim.
    for seed in range(10):
        m = renderer.level(seed)
        (r,) = feature_rows(m, seed, [m.start_square])
        assert r["top_right_reachable_corner_dist"] == m.world_dim - m.maze_dim
    # Wall it off from the start and the top-right-most reachable square moves inward.
    walled = maze.with_wall((8, 8))
    assert top_right_most(walled, walled.start_square) != (8, 8) and walled.grid[8, 8] == WALL
    assert corner_distance(walled, top_right_most(walled, walled.start_square)) > 12


def test_activations_then_probe_end_to_end(tmp_path: Path) -> None:
    spec = tmp_path / "acts.yaml"
    spec.write_text(
        yaml.safe_dump({"seeds": [0, 1, 2, 3, 4], "squares": "start", "sites": ["fc", "block3.res1.resadd_out"]})
    )
    acts = tmp_path / "acts"
    result = run("activations", spec, "--out", acts)
    assert result.exit_code == 0, result.output
    report = json.loads((acts / "activations.json").read_text())
    assert report["sites"] == ["block3.res1.resadd_out", "fc"]  # network order, not the spec's
    assert report["shapes"] == {"block3.res1.resadd_out": [32, 8, 8], "fc": [256]}
    assert [c["seed"] for c in report["chunks"]] == [0, 1, 2, 3, 4] and report["rows"] == 5
    with np.load(acts / "acts-seed3-fc.npz") as npz:
        assert npz["x"].shape == (1, 256) and npz["x"].dtype == np.float16
    with (acts / "features-seed3.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["seed"] == "3" and int(row["top_right_reachable_corner_dist"]) == 15 - int(row["maze_dim"])

    pspec = tmp_path / "probe.yaml"
    pspec.write_text(
        yaml.safe_dump({"activations": str(acts), "seeds": {"from": 0, "to": 4}, "features": ["maze_dim"], "folds": 5})
    )
    out = tmp_path / "probe"
    result = run("probe", pspec, "--out", out)
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "probe.json").read_text())
    assert [c["site"] for c in rep["probes"]] == ["block3.res1.resadd_out", "fc"]
    assert rep["activations"]["checkpoint"].startswith("maze-rr5-easy-160M sha256 ")
    check_tables(acts)
    check_tables(out)
    assert all(c["probes"]["maze_dim"]["folds"] == 5 for c in rep["probes"])
    assert (out / "probe-maze_dim.png").is_file() and (out / "channels-maze_dim.png").is_file()
    # Resuming the activations run rewrites its report (reused cells, times) over the same data: the probe run
    # on it stays the same run and resumes, rather than refusing its folder as another run's.
    before = (acts / "activations.json").read_bytes()
    assert run("activations", spec, "--out", acts).exit_code == 0
    assert (acts / "activations.json").read_bytes() != before
    again = run("probe", pspec, "--out", out)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "probe.json").read_text())["activations"]["sha256"] == rep["activations"]["sha256"]
    assert len(rep["best"]["maze_dim"]["channels"]) in (32, 256)
    # The charts, drawn again from probe.json: a bar per site as long as its held-out score, the best site
    # highlighted; a bar per channel (the strongest |r|, in index order) as long as its correlation.
    best = rep["best"]["maze_dim"]
    (ax,) = panels(depth_chart("maze_dim", rep["probes"], best["site"]))
    assert bar_ends(ax) == pytest.approx([c["probes"]["maze_dim"]["score"] for c in rep["probes"]])
    assert [t.get_text().split()[0] for t in ax.get_yticklabels()] == ["block3.res1.resadd_out", "fc"]
    (bold,) = [t.get_text().split()[0] for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert bold == best["site"]
    shuffled = [
        c["probes"]["maze_dim"]["shuffled"]["score"] for c in rep["probes"] if "shuffled" in c["probes"]["maze_dim"]
    ]
    assert references(ax) == ([max(shuffled)] if shuffled else [])
    (ax,) = panels(channel_chart("maze_dim", best["site"], best["channels"]))
    shown = [int(t.get_text().split()[-1]) for t in ax.get_yticklabels()]
    assert shown == sorted(shown) and len(shown) == min(40, len(best["channels"]))
    assert bar_ends(ax) == pytest.approx([best["channels"][c] for c in shown])
    strongest = sorted(range(len(best["channels"])), key=lambda c: -abs(best["channels"][c] or 0))[: len(shown)]
    assert set(shown) == set(strongest) and references(ax) == [0.0]

    # Bad input: a folder with no activations, a seed the run lacks, an unknown feature, a site it did not store.
    for bad, needle in (
        ({"activations": str(tmp_path)}, "holds no activations.json"),
        ({"seeds": [0, 9]}, "not in"),
        ({"features": ["nope"]}, "is not a feature"),
        ({"sites": ["block1.conv"]}, "is not stored in"),
        ({"layer": "fc"}, "reads the sites and mazes"),
    ):
        pspec.write_text(yaml.safe_dump({"activations": str(acts), "seeds": [0, 1, 2], **bad}))
        result = run("probe", pspec, "--out", tmp_path / "bad")
        assert result.exit_code == 2 and needle in result.output, result.output
        assert not (tmp_path / "bad").exists()
    spec.write_text(yaml.safe_dump({"seeds": [0], "sites": ["block9.conv"]}))
    result = run("activations", spec, "--out", tmp_path / "bad")
    assert result.exit_code == 2 and "is not a hook point" in result.output and not (tmp_path / "bad").exists()
