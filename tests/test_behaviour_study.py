"""`steer behaviour` end to end on the real checkpoint: exact episode statistics, sampled episodes, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _charts import assert_band, panels
from _cli import run
from _tables import check_tables
from PIL import Image

from steer.studies.behaviour import behaviour_chart


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("behaviour")
    spec = folder / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "seeds": [1, 2, 3],
                "vector": {"kind": "cheese"},
                "coeffs": [-1],
                "episodes": 40,
                "show": [1],
                "targets": {"corner": [14, 14]},
            }
        )
    )
    result = run("behaviour", spec, "--out", folder / "out")
    assert result.exit_code == 0, result.output
    assert "P(reach the cheese within 500 steps)" in result.output
    return folder / "out"


def test_exact_statistics_per_maze_and_condition(out: Path) -> None:
    report = json.loads((out / "metrics.json").read_text())
    assert [m["seed"] for m in report["mazes"]] == [1, 2, 3]
    for maze in report["mazes"]:
        original, (patched,) = maze["original"], maze["by_coeff"]
        for row, side in ((original, None), (patched, "patched")):
            value = lambda key, r=row, s=side: r[key] if s is None else r[key][s]  # noqa: E731
            assert 0 <= value("p_reach_cheese") <= 1 and 0 <= value("p_reach_top_right") <= 1
            assert 0 < value("mean_steps") <= 500 and row["greedy_end"] in ("cheese", "top_right", "loop", "timeout")
            assert set(row["p_reach_targets"]) == {"corner"}
        assert patched["p_reach_cheese"]["original"] == original["p_reach_cheese"]  # paired with the original
        # Sampled episodes agree with the exact chain within a 99% binomial interval on most maze-conditions.
        low, high = original["sampled"]["p_cheese_ci99"]
        assert original["sampled"]["n"] == 40 and low <= high
    agree = report["summary"]["sampled_agree"]
    assert agree["conditions"] == 6 and agree["exact_in_ci99"] >= 5
    # The unpatched agent on these mazes mostly reaches the cheese; subtracting the cheese vector lowers it.
    change = report["summary"]["by_coeff"][0]["p_reach_cheese"]["change"]
    assert change["n"] == 3 and change["mean"] < 0


def test_files_and_figures(out: Path) -> None:
    check_tables(out)
    names = {p.name for p in out.iterdir()}
    assert {
        "behaviour-seed1.json",
        "behaviour.png",
        "occupancy-seed1-coeff-1.png",
        "episodes-seed1-coeff-1.gif",
    } <= names
    detail = json.loads((out / "behaviour-seed1.json").read_text())
    occupancy = detail["conditions"][0]["occupancy"]
    assert len(occupancy) == detail["world_dim"] == 15
    gif = Image.open(out / "episodes-seed1-coeff-1.gif")
    assert gif.n_frames > 1 and (out / "episodes-seed1-coeff-1.gif").stat().st_size < 1_000_000


def test_chart_shows_the_means_and_their_intervals(out: Path) -> None:
    """behaviour.png drawn again from metrics.json: per outcome the original then each coefficient, the line
    the means over mazes, the band their 95% intervals, the original's mean dashed."""
    report = json.loads((out / "metrics.json").read_text())
    s = report["summary"]
    fig = behaviour_chart(report["coeffs"], s, "behaviour")
    assert len(panels(fig)) == 2
    for ax, key in zip(panels(fig), ("p_reach_cheese", "p_reach_top_right"), strict=True):
        stats = [s["original"][key], *(row[key]["patched"] for row in s["by_coeff"])]
        ci = [st["mean_ci"] or [st["mean"]] * 2 for st in stats]
        assert_band(
            ax, [st["mean"] for st in stats], [c[0] for c in ci], [c[1] for c in ci], s["original"][key]["mean"]
        )
        assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "x -1"]
        assert " ".join(ax.texts[0].get_text().split()) == "mean and its 95% bootstrap interval over mazes (n ≤ 3)"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"coeff": -1}, "coeffs: give the patched conditions"),
        ({"episodes": -5}, "episodes: expected a number of episodes from 0 to 10000"),
        ({"show": [7]}, "show[0]: seed 7 is not one of the seeds"),
        ({"targets": {"x": [1]}}, "targets.x: expected a square [row, col]"),
    ],
)
def test_bad_behaviour_specs_are_one_clear_error(tmp_path: Path, extra: dict, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"seeds": [1], "vector": {"kind": "cheese"}, "coeffs": [-1], **extra}))
    result = run("behaviour", spec, "--out", tmp_path / "o")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_sweep_and_apply_report_behaviour_metrics_when_asked(tmp_path: Path, ckpt, easy) -> None:
    from steer.analysis.chain import maze_behaviours
    from steer.net.vectors import PairSpec, compute_vector

    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"seeds": [1, 2], "vector": {"kind": "cheese"}, "coeffs": [-1, 0], "metrics": ["p_reach_cheese"]}
        )
    )
    assert run("sweep-coeff", spec, "--out", tmp_path / "sweep").exit_code == 0
    report = json.loads((tmp_path / "sweep" / "metrics.json").read_text())
    maze = report["mazes"][0]
    minus, zero = maze["by_coeff"]
    assert zero["p_reach_cheese"]["patched"] == pytest.approx(maze["original"]["p_reach_cheese"], abs=1e-6)
    level = easy.level(1)
    vec = compute_vector(ckpt.policy, easy, level, PairSpec("cheese"), "block2.res1.resadd_out")
    _, direct = maze_behaviours(ckpt.policy, easy, level, [(), [("block2.res1.resadd_out", vec.tensor, -1.0)]])
    assert minus["p_reach_cheese"]["patched"] == pytest.approx(direct.p_cheese, abs=1e-5)
    assert "p_reach_cheese" in report["summary"]["bands"] and "p_reach_top_right" not in maze["original"]

    spec = tmp_path / "apply.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1, "metrics": ["p_reach_cheese", "mean_steps"]}
        )
    )
    assert run("apply", spec, "--out", tmp_path / "apply").exit_code == 0
    applied = json.loads((tmp_path / "apply" / "metrics.json").read_text())
    assert applied["mazes"][0]["p_reach_cheese"]["patched"] == pytest.approx(direct.p_cheese, abs=1e-5)
    assert applied["summary"]["mean_steps"]["change"]["n"] == 1
    spec.write_text(yaml.safe_dump({"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1, "metrics": ["tv"]}))
    bad = run("apply", spec, "--out", tmp_path / "bad")
    assert bad.exit_code == 2 and "metrics[0]: 'tv' is not a metric to ask for" in bad.output


def test_compose_and_transfer_report_behaviour_metrics_when_asked(tmp_path: Path) -> None:
    spec = tmp_path / "compose.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "seeds": [1],
                "vectors": [{"vector": {"kind": "cheese"}, "coeff": -1}, {"vector": {"kind": "top_right"}, "coeff": 1}],
                "metrics": ["p_reach_top_right"],
            }
        )
    )
    assert run("compose", spec, "--out", tmp_path / "compose").exit_code == 0
    maze = json.loads((tmp_path / "compose" / "metrics.json").read_text())["mazes"][0]
    together, (cheese, top_right) = maze["p_reach_top_right"], maze["singles"]
    assert together["original"] == cheese["p_reach_top_right"]["original"] == top_right["p_reach_top_right"]["original"]
    assert 0 <= together["patched"] <= 1

    spec = tmp_path / "transfer.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "sources": [1, 3],
                "targets": [1],
                "vector": {"kind": "cheese"},
                "coeff": -1,
                "metrics": ["p_reach_cheese"],
            }
        )
    )
    assert run("transfer", spec, "--out", tmp_path / "transfer").exit_code == 0
    pairs = json.loads((tmp_path / "transfer" / "metrics.json").read_text())["pairs"]
    own = next(p for p in pairs if p["source"] == 1)
    other = next(p for p in pairs if p["source"] == 3)
    assert (
        own["delta_p_reach_cheese"] < other["delta_p_reach_cheese"] + 1e-9
    )  # a maze's own vector acts at least as much
    assert own["metrics"]["p_reach_cheese"]["original"] == other["metrics"]["p_reach_cheese"]["original"]
