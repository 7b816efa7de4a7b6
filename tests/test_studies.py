"""The study commands (compose, sweep-coeff, transfer) end to end, the cached-suffix forward pass they rely
on, and one measured claim. Real checkpoint, real procgen; small easy-mode mazes keep it fast."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.colors
import numpy as np
import pytest
import torch
import yaml
from _charts import assert_band, bar_ends, panels, references
from _cli import run, write_spec
from _harness import LAYER, metrics
from _tables import check_tables
from PIL import Image

from steer.analysis.metrics import METRICS
from steer.net.hooks import patching
from steer.net.vectors import PairSpec, SteeringVector, compute_vector
from steer.net.vfield import FieldInputs, action_probs, vector_field
from steer.report.style import HIGHLIGHT
from steer.run.spec_values import parse_coeffs
from steer.run.specs import DEFAULT_LAYER
from steer.studies import layer_sweep, sweep_coeff
from steer.studies.compose import additivity_error

# Seeds 0 (3x3), 29 (5x5) and 6 (15x15: it fills the world, so no top-right vector can be built there).


def test_compose_two_vectors_at_two_layers(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            "seeds": [0, 6, 29],
            "vectors": [
                {"vector": {"kind": "cheese"}, "coeff": -1},
                {"vector": {"kind": "top_right"}, "coeff": 1, "layer": "block3.res1.resadd_out", "label": "corner"},
            ],
        },
    )
    out = tmp_path / "compose"
    result = run("compose", spec, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == ["compose-seed0.png", "compose-seed29.png"]
    assert Image.open(out / "compose-seed0.png").width >= 5 * 200  # original, 2 alone, together, diff
    report = metrics(out)
    assert report["command"] == "compose"
    assert [v["layer"] for v in report["vectors"]] == [LAYER, "block3.res1.resadd_out"]
    assert report["vectors"][1]["label"] == "corner"
    assert [s["seed"] for s in report["skipped"]] == [6] and "15x15" in report["skipped"][0]["reason"]
    for maze in report["mazes"]:
        assert maze["additivity_error"] >= 0 and len(maze["singles"]) == 2
        assert maze["p_cheese_ds"]["patched"] < maze["p_cheese_ds"]["original"]
    assert report["summary"]["additivity_error"]["n"] == 2
    assert report["provenance"]["checkpoint"]["sha256"].startswith("e82e620e")
    check_tables(out)


def test_composing_with_a_zero_vector_is_exactly_additive(tmp_path: Path) -> None:
    zero = SteeringVector(layer=LAYER, tensor=torch.zeros(32, 16, 16), kind="custom")
    zero.save(tmp_path / "zero.pt")
    spec = write_spec(
        tmp_path,
        {
            "seeds": [0],
            "vectors": [{"vector": {"kind": "cheese"}, "coeff": -1}, {"vector": {"file": "zero.pt"}, "coeff": 3}],
        },
    )
    result = run("compose", spec, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    (maze,) = metrics(tmp_path / "out")["mazes"]
    assert maze["additivity_error"] == pytest.approx(0, abs=1e-6)
    assert maze["singles"][1]["mean_tv"] == pytest.approx(0, abs=1e-7)


def test_additivity_error_is_relative_to_the_joint_change() -> None:
    original = np.zeros((2, 15))
    single = np.zeros((2, 15))
    single[0, 0] = 0.5
    assert additivity_error(original, [single, single], single) == pytest.approx(1.0)  # predicted 2x, got 1x
    assert additivity_error(original, [single], original) is None  # no joint change: undefined


def test_sweep_coeff_on_cheese_removed_mazes(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            "seeds": [0, 6, 29],
            "target_edits": ["remove_cheese"],
            "vector": {"kind": "top_right"},
            "coeffs": {"from": -1, "to": 1, "step": 1},
            "grid_seeds": [29, 0],
        },
    )
    out = tmp_path / "sweep"
    result = run("sweep-coeff", spec, "--out", out)
    assert result.exit_code == 0, result.output
    expected = {
        "sweep-fields-seed0.png",
        "sweep-fields-seed29.png",
        "sweep-metrics.png",
        "metrics.json",
        "manifest.json",
        "report.html",
        "mazes.csv",
        "tables.json",
    }
    assert "sweep-fields-seed29.png" in result.output and "sweep-fields-seed0.png" in result.output
    assert {p.name for p in out.iterdir()} == expected
    report = metrics(out)
    assert report["coeffs"] == [-1, 0, 1]
    assert [s["seed"] for s in report["skipped"]] == [6]
    for maze in report["mazes"]:
        zero = maze["by_coeff"][1]
        assert zero["coeff"] == 0 and zero["mean_tv"] == 0  # adding 0 x vector changes nothing
        assert zero["entropy"]["patched"] == pytest.approx(maze["original"]["entropy"])
        for row in maze["by_coeff"]:
            assert 0 <= row["entropy"]["patched"] <= np.log(15) + 1e-9 and 0 <= row["wall_mass"]["patched"] <= 1
            assert row["p_cheese_ds"]["patched"] is None  # no cheese, so no decision square
    bands = report["summary"]["bands"]["p_toward_top_right"]
    assert len(bands["median"]) == 3 and bands["n"] == [2, 2, 2]
    assert all(lo <= med <= hi for lo, med, hi in zip(bands["q25"], bands["median"], bands["q75"], strict=True))
    check_tables(out)
    # The chart, drawn again from metrics.json: a panel per metric defined somewhere (none of the cheese
    # metrics on these cheese-removed mazes), its line the medians, its band the quartiles, dashed the original.
    fig = sweep_coeff.metrics_chart(report["coeffs"], report["summary"], "sweep")
    shown = {k: b for k, b in report["summary"]["bands"].items() if any(b["n"])}
    assert "p_cheese_ds" not in shown and len(shown) >= 4
    assert [ax.get_title(loc="left") for ax in panels(fig)] == [METRICS[k].label for k in shown]
    for ax, b in zip(panels(fig), shown.values(), strict=True):
        assert_band(ax, b["median"], b["q25"], b["q75"], b["original_median"])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "0", "1"]


@pytest.mark.parametrize(("layer", "coeff"), [(LAYER, -1.5), ("block3.res2.conv1", 2.0), ("block1.conv", 0.7)])
def test_cached_suffix_matches_a_full_patched_forward(policy, easy, layer: str, coeff: float) -> None:
    maze = easy.level(3)  # 9x9: 48 squares, split into batches of 20 below
    vec = compute_vector(policy, easy, maze, PairSpec("cheese"), layer).tensor
    inputs = FieldInputs.render(easy, maze)
    unpatched_cached = vector_field(policy, inputs, batch_size=20, reuse_from=layer).probs
    cached = vector_field(policy, inputs, [(layer, vec, coeff)], batch_size=20).probs
    assert policy.resolve(layer) in next(iter(inputs._prefixes.values()))  # the prefix really was reused
    with torch.no_grad(), patching(policy, [(layer, vec, coeff)]):
        full = action_probs(policy(inputs.obs)[0]).numpy()
    assert torch.allclose(torch.from_numpy(cached), torch.from_numpy(full), atol=1e-6)
    with torch.no_grad():
        unpatched = action_probs(policy(inputs.obs)[0])
    assert torch.allclose(torch.from_numpy(unpatched_cached), unpatched, atol=1e-6)


def test_transfer_matrix_heat_map_and_fields(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            "sources": [0, 29],
            "targets": [0, 29],
            "vector": {"kind": "cheese"},
            "coeff": -1,
            "show": [[0, 29]],
        },
    )
    out = tmp_path / "transfer"
    result = run("transfer", spec, "--out", out)
    assert result.exit_code == 0, result.output
    expected = {"transfer-matrix.png", "transfer-src0-tgt29.png", "metrics.json", "manifest.json", "report.html"}
    expected |= {"mazes.csv", "tables.json"}
    assert {p.name for p in out.iterdir()} == expected
    report = metrics(out)
    assert report["effect_metric"] == "p_cheese_ds"
    assert report["figures"] == ["transfer-src0-tgt29.png", "transfer-matrix.png"]
    m = report["matrices"]
    assert np.array(m["effect"]).shape == (2, 2)
    assert m["same_maze_dim"] == [[True, False], [False, True]] and m["same_cheese"] == [[True, False], [False, True]]
    assert m["effect"] == m["delta_p_cheese_ds"] and len(m["delta_p_toward_top_right"]) == 2
    assert m["effect"][0][0] < -0.3  # seed 0's own cheese vector, subtracted, steers away from its cheese
    pair = next(p for p in report["pairs"] if (p["source"], p["target"]) == (0, 29))
    assert pair["source_maze_dim"] == 3 and pair["target_maze_dim"] == 5 and not pair["same_cheese"]
    # mazes.csv: per target its original, then a row per source: the matrix's cells, one a row.
    mazes = check_tables(out).mazes.set_index(["seed", "condition", "source"])
    assert len(mazes) == 2 * (1 + 2)
    assert mazes.loc[(29, "patched", 0), "p_cheese_ds"] == pair["metrics"]["p_cheese_ds"]["patched"]
    assert mazes.loc[(29, "patched", 0), "source_maze_dim"] == 3 and not mazes.loc[(29, "patched", 0), "same_cheese"]


BAD_SPECS = [
    ("compose", {"seeds": [0], "vectors": [{"vector": {"kind": "cheese"}, "coeff": -1}]}, "vectors:"),
    (
        "compose",
        {"seeds": [0], "vectors": [{"vector": {"kind": "cheese"}}, {"vector": {"kind": "top_right"}, "coeff": 1}]},
        "vectors[0].coeff",
    ),
    (
        "compose",
        {
            "seeds": [0],
            "vectors": [
                {"vector": {"kind": "cheese"}, "coeff": -1},
                {"vector": {"kind": "top_right"}, "coeff": 1, "layer": "block9"},
            ],
        },
        "vectors[1].layer",
    ),
    ("sweep-coeff", {"seeds": [0], "vector": {"kind": "cheese"}, "coeffs": [1, ".nan"]}, "coeffs[1]"),
    (
        "sweep-coeff",
        {"seeds": [0], "vector": {"kind": "cheese"}, "coeffs": {"from": 0, "to": 2, "step": -1}},
        "coeffs.step",
    ),
    ("sweep-coeff", {"seeds": [0], "vector": {"kind": "cheese"}, "coeffs": [1], "coeff": 1}, "coeff:"),
    (
        "sweep-coeff",
        {"seeds": [0, 1], "vector": {"kind": "cheese"}, "coeffs": [1], "grid_seeds": [1, 5]},
        "grid_seeds[1]",
    ),
    ("apply", {"seeds": [0], "vector": {"kind": "cheese"}, "coeff": -1, "grid_seeds": [0]}, "grid_seeds:"),
    (
        "transfer",
        {"sources": [0], "targets": [2], "vector": {"kind": "cheese"}, "coeff": -1, "show": [[2, 0]]},
        "show[0][0]",
    ),
    ("transfer", {"sources": [0], "vector": {"kind": "cheese"}, "coeff": -1}, "targets:"),
]


@pytest.mark.parametrize(("command", "spec", "field"), BAD_SPECS)
def test_bad_spec_exits_2_naming_the_field_and_writes_nothing(
    tmp_path: Path, command: str, spec: dict, field: str
) -> None:
    out = tmp_path / "out"
    result = run(command, write_spec(tmp_path, spec), "--out", out)
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert not out.exists()


def test_top_right_plus_one_pulls_toward_the_corner_on_cheese_removed_mazes(tmp_path: Path) -> None:
    """Turner et al.: adding the top-right vector raises the pull toward the top-right when there is no cheese."""
    seeds = [0, 3, 5, 8, 11, 20, 22, 29]  # small mazes (3x3 to 9x9) with a margin for the top-right path
    spec = write_spec(
        tmp_path, {"seeds": seeds, "target_edits": ["remove_cheese"], "vector": {"kind": "top_right"}, "coeffs": [1]}
    )
    result = run("sweep-coeff", spec, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    mazes = metrics(tmp_path / "out")["mazes"]
    assert len(mazes) == len(seeds)
    raised = [m["by_coeff"][0]["p_toward_top_right"]["patched"] > m["original"]["p_toward_top_right"] for m in mazes]
    assert sum(raised) > len(seeds) / 2


def test_large_top_right_coefficients_break_the_policy_down(tmp_path: Path) -> None:
    """At coefficient 20 (mazes with cheese) the policy stops heading anywhere useful: it moves into walls."""
    seeds = [3, 5, 8, 13, 20]
    spec = write_spec(tmp_path, {"seeds": seeds, "vector": {"kind": "top_right"}, "coeffs": [20]})
    result = run("sweep-coeff", spec, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    mazes = metrics(tmp_path / "out")["mazes"]
    into_walls = [m["by_coeff"][0]["wall_mass"]["patched"] > m["original"]["wall_mass"] + 0.1 for m in mazes]
    assert sum(into_walls) > len(seeds) / 2
    assert all(m["by_coeff"][0]["mean_tv"] > 0.3 for m in mazes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"from": 0, "to": 0.3, "step": 0.1}, (0.0, 0.1, 0.2, 0.3)),
        ({"from": 1, "to": -1, "step": -1}, (1.0, 0.0, -1.0)),
        ([-1, "2.5", 20], (-1.0, 2.5, 20.0)),
    ],
)
def test_coefficient_lists_and_ranges(value: object, expected: tuple[float, ...]) -> None:
    assert parse_coeffs(value) == expected


def test_layer_sweep_measures_each_layer(tmp_path: Path) -> None:
    layers = ["block1.conv", "block2.res1.resadd_out", "block2.res1.relu1_out", "block2.res1.conv1", "fc_policy"]
    spec = {"seeds": [1, 4, 28], "vector": {"kind": "cheese"}, "coeff": -1, "layers": layers, "figures": ["svg"]}
    out = tmp_path / "layers"
    result = run("layer-sweep", write_spec(tmp_path, spec), "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["layers"] == layers and Image.open(out / "layer-sweep.png").height > 100
    # `figures: [svg]`: the chart also as SVG, its text kept as text; the PNG always.
    svg = (out / "layer-sweep.svg").read_text()
    assert svg.startswith("<?xml") and ">block2.res1.conv1</text>" in svg
    # The chart, drawn again from metrics.json: a bar per layer as long as its median P(cheese | DS), the
    # default layer highlighted, the unpatched policy's median dashed.
    by_layer = report["summary"]["by_layer"]
    (ax,) = panels(layer_sweep.layer_chart("cheese", -1, by_layer, "run"))
    assert bar_ends(ax) == pytest.approx([r["p_cheese_ds"]["patched"]["median"] for r in by_layer])
    assert references(ax) == [by_layer[0]["p_cheese_ds"]["original"]["median"]]
    assert [p.get_facecolor() for p in ax.patches].count(matplotlib.colors.to_rgba(HIGHLIGHT)) == 1
    assert ax.patches[layers.index(DEFAULT_LAYER)].get_facecolor() == matplotlib.colors.to_rgba(HIGHLIGHT)
    rows = {r["layer"]: r for r in report["summary"]["by_layer"]}
    assert all(r["mazes"] == 3 for r in rows.values())
    # conv1 is affine, so patching its input by -v and its output by -conv1(v) is the same edit.
    for maze in report["mazes"]:
        by = {r["layer"]: r for r in maze["by_layer"]}
        a, b = by["block2.res1.relu1_out"], by["block2.res1.conv1"]
        assert a["mean_tv"] == pytest.approx(b["mean_tv"], abs=1e-5)
    assert rows["block2.res1.resadd_out"]["mean_tv"]["median"] > 0.05
    check_tables(out)


def test_layer_sweep_rejects_keys_and_layers_it_does_not_use(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1, "layers": ["block9"]})
    result = run("layer-sweep", spec, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "layers[0]: 'block9' is not a hook point" in result.output
    other = tmp_path / "other"
    other.mkdir()
    spec = write_spec(other, {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1, "coeffs": [1]})
    result = run("apply", spec, "--out", tmp_path / "y")
    assert result.exit_code == 2 and "coeffs: `steer apply` does not use this key" in result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_batch_with_a_grid_resumes_and_force_recomputes(tmp_path: Path) -> None:
    (tmp_path / "apply.yaml").write_text(yaml.safe_dump({"seeds": [1, 3], "vector": {"kind": "cheese"}, "coeff": -1}))
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        yaml.safe_dump(
            {
                "name": "b",
                "experiments": [{"name": "plus", "command": "apply", "spec": "apply.yaml", "set": {"coeff": 1}}],
                "grid": {
                    "command": "apply",
                    "spec": {"seeds": [1], "vector": {"kind": "cheese"}},
                    "axes": {"coeff": [-1, 2], "vector.kind": ["cheese", "top_right"]},
                },
            }
        )
    )
    out = tmp_path / "out"
    result = run("batch", batch, "--out", out)
    assert result.exit_code == 0, result.output
    index = json.loads((out / "batch.json").read_text())["experiments"]
    assert [e["name"] for e in index] == [
        "plus",
        "coeff--1_kind-cheese",
        "coeff--1_kind-top_right",
        "coeff-2_kind-cheese",
        "coeff-2_kind-top_right",
    ]
    plus = json.loads((out / "plus" / "metrics.json").read_text())
    assert [m["coeff"] for m in plus["mazes"]] == [1, 1]
    top = json.loads((out / "coeff-2_kind-top_right" / "metrics.json").read_text())
    assert top["spec"]["vector"]["kind"] == "top_right" and top["mazes"][0]["coeff"] == 2

    again = run("batch", batch, "--out", out)
    assert again.exit_code == 0 and "6 finished cells reused" in again.output
    forced = run("batch", batch, "--out", out, "--force")
    assert forced.exit_code == 0 and "0 finished cells reused" in forced.output


def test_batch_validates_every_experiment_before_running(tmp_path: Path) -> None:
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        yaml.safe_dump(
            {
                "experiments": [
                    {
                        "name": "ok",
                        "command": "apply",
                        "spec": {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1},
                    },
                    {
                        "name": "bad",
                        "command": "apply",
                        "spec": {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": "x"},
                    },
                ]
            }
        )
    )
    result = run("batch", batch, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "experiments[1] (bad): coeff: expected a number" in result.output
    assert not (tmp_path / "out").exists()


def test_top_right_breaks_down_at_large_coefficients_and_composes_past_cheese_alone(tmp_path: Path) -> None:
    """Issue 3's claims on a few mazes: breakdown at 20, and -cheese +top-right beats -cheese alone at the DS."""
    seeds = [1, 3, 4, 8, 9, 10]  # mazes smaller than the world, with decision squares
    spec = write_spec(tmp_path, {"seeds": seeds, "vector": {"kind": "top_right"}, "coeffs": [1, 20]})
    assert run("sweep-coeff", spec, "--out", tmp_path / "sweep").exit_code == 0
    report = json.loads((tmp_path / "sweep" / "metrics.json").read_text())
    at = {r["coeff"]: r for r in report["summary"]["by_coeff"]}
    unpatched = np.median([m["original"]["p_toward_top_right"] for m in report["mazes"]])
    wall = np.median([m["original"]["wall_mass"] for m in report["mazes"]])
    assert at[20]["p_toward_top_right"]["patched"]["median"] < unpatched
    assert at[20]["wall_mass"]["patched"]["median"] > wall and at[20]["mean_tv"]["median"] > at[1]["mean_tv"]["median"]

    compose = tmp_path / "compose"
    compose.mkdir()
    spec = write_spec(
        compose,
        {
            "seeds": seeds,
            "vectors": [{"vector": {"kind": "cheese"}, "coeff": -1}, {"vector": {"kind": "top_right"}, "coeff": 1}],
        },
    )
    assert run("compose", spec, "--out", compose / "out").exit_code == 0
    mazes = json.loads((compose / "out" / "metrics.json").read_text())["mazes"]
    both = np.median([m["p_top_right_ds"]["patched"] for m in mazes])
    cheese_alone = np.median([m["singles"][0]["p_top_right_ds"]["patched"] for m in mazes])
    assert both > cheese_alone
