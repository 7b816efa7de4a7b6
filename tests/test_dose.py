"""`steer dose-response`: the measures on hand-checkable arrays (a linear response is ratio 1 and asymmetry 0; a
ReLU of a linear map is not odd), and one small run end to end on the real checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _charts import assert_band, cells, line, panels
from _tables import check_tables
from typer.testing import CliRunner

from cli.main import app
from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.net.dose import DEFAULT_TS, SiteDose, asymmetries, linearity_ratios, sign_pairs
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import FieldInputs, vector_field
from steer.studies.dose_response import STUDY, figures, parse_ts

TS = (-2.0, -1.0, -0.1, 0.1, 1.0, 2.0)


def _dose(ts: tuple[float, ...], f, x: torch.Tensor, v: torch.Tensor, relu: bool = False) -> dict:
    """The measures of site function `f` at input `x` with `t * v` added, over all of `ts` in one chunk."""
    acc = SiteDose(ts, relu)
    acc.add(torch.cat([f(x + t * v) for t in (0.0, *ts)]), len(ts) + 1)
    return acc.result()


def test_default_grid_is_symmetric_log() -> None:
    assert DEFAULT_TS[:3] == (-20.0, -10.0, -5.0) and tuple(-t for t in reversed(DEFAULT_TS)) == DEFAULT_TS
    assert [m for m, _, _ in sign_pairs(DEFAULT_TS)] == [0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 20.0]
    assert sign_pairs((-1.0, 0.5, 1.0)) == [(1.0, 0, 2)]  # 0.5 has no negative partner


def test_linear_response_has_ratio_one_and_no_asymmetry() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(7, 5, generator=gen)
    x, v = torch.randn(9, 5, generator=gen), torch.randn(5, generator=gen)
    r = _dose(TS, lambda a: a @ w.T, x, v)
    assert r["linearity"] == pytest.approx([1.0] * len(TS), abs=1e-5)
    assert r["asymmetry"] == pytest.approx([0.0] * 3, abs=1e-5)
    assert r["norm"][4] == pytest.approx(float((v @ w.T).norm() * 3), rel=1e-5)  # 9 squares: ||D(1)|| = 3 ||Wv||
    assert r["relu_flips"] is None


def test_measures_on_arrays() -> None:
    # D(t) = t·A: ||D(t)|| = |t| ||A||, so every ratio is 1; D(t) + D(-t) = 0.
    assert linearity_ratios(TS, [abs(t) * 4.0 for t in TS]) == pytest.approx([1.0] * 6)
    assert asymmetries([0.0, 0.0], [(3.0, 3.0), (5.0, 5.0)]) == [0.0, 0.0]
    # A response that saturates at large t falls below 1; an even one (D(t) = D(-t)) has asymmetry 1.
    assert linearity_ratios((0.1, 1.0), [0.1, 0.5]) == [1.0, 0.5]
    assert asymmetries([6.0], [(3.0, 3.0)]) == [1.0]
    assert linearity_ratios((0.1, 1.0), [0.0, 1.0]) == [None, None]  # no slope to compare with
    assert asymmetries([0.0], [(0.0, 0.0)]) == [None]


def test_relu_of_linear_map_is_asymmetric_and_flips_units() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(16, 5, generator=gen)
    x, v = torch.randn(9, 5, generator=gen), torch.randn(5, generator=gen)
    r = _dose(TS, lambda a: torch.relu(a @ w.T), x, v, relu=True)
    assert all(0 < a <= 1 for a in r["asymmetry"])
    assert r["asymmetry"][2] > r["asymmetry"][0]  # more units cross zero at |t| = 2 than at 0.1
    assert r["relu_flips"] is not None and 0 < r["relu_flips"][-1] <= 1
    # One unit, on at x: relu(1 + t) - relu(1) for t = ±2 is +2 and -1, so the asymmetry is |2 - 1| / (2 + 1).
    one = _dose((-2.0, 2.0), torch.relu, torch.ones(1, 1), torch.ones(1), relu=True)
    assert one["asymmetry"] == pytest.approx([1 / 3]) and one["relu_flips"] == [1.0, 0.0]


def test_spec_checks() -> None:
    assert parse_ts([1, -1, 0.5]) == (-1.0, 0.5, 1.0)
    with pytest.raises(SteerError, match="ts: 0 is the baseline"):
        parse_ts([0, 1])
    with pytest.raises(SteerError, match=r"asymmetry_threshold: 1\.5 is out of range"):
        STUDY.parse({"seeds": [0], "vector": {"kind": "cheese"}, "asymmetry_threshold": 1.5})


def test_dose_response_end_to_end(tmp_path: Path) -> None:
    sites = ["block2.res2.relu1_out", "block3.res1.resadd_out", "fc_policy"]
    spec = {"seeds": [0, 29], "vector": {"kind": "top_right"}, "ts": [-1, -0.1, 0.1, 1], "sites": sites}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "dose"
    result = CliRunner().invoke(app, ["dose-response", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["sites"] == [*sites, "action_probs"] and report["ts"] == [-1, -0.1, 0.1, 1]
    assert [m["seed"] for m in report["mazes"]] == [0, 29]
    for maze in report["mazes"]:
        assert set(maze["sites"]) == set(report["sites"])
        probs = maze["sites"]["action_probs"]
        assert len(probs["norm"]) == 4 and len(probs["asymmetry"]) == 2
        assert all(0 <= a <= 1 for a in probs["asymmetry"])
        assert maze["sites"]["block2.res2.relu1_out"]["relu_flips"] is not None
        assert maze["sites"]["fc_policy"]["relu_flips"] is None
        assert len(maze["behaviour"]["mean_tv"]) == 4
    summary = report["summary"]
    assert summary["magnitudes"] == [0.1, 1.0] and summary["first_asymmetric_site"]["threshold"] == 0.2
    assert summary["sites"]["action_probs"]["asymmetry"][1]["n"] == 2
    assert {"dose-asymmetry.png", "dose-linearity.png", "dose-behaviour.png"} <= {p.name for p in out.glob("*.png")}
    check_tables(out)
    # The figures drawn again from metrics.json, read back from their axes.
    figs = figures(summary, report["ts"], "dose", summary["first_asymmetric_site"]["threshold"])
    assert [ax.get_title(loc="left") for ax in panels(figs["dose-norm.png"])] == report["sites"]
    for ax, site in zip(panels(figs["dose-linearity.png"]), report["sites"], strict=True):
        rows = summary["sites"][site]["linearity"]
        assert_band(ax, *([r[k] for r in rows] for k in ("median", "q25", "q75")), baseline=1.0)
    ax = panels(figs["dose-norm.png"])[0]
    norms = summary["sites"][sites[0]]["norm"]
    np.testing.assert_allclose(line(ax, "_median").get_ydata(), np.log10([r["median"] for r in norms]))
    (ax,) = panels(figs["dose-asymmetry.png"])
    medians = [[r["median"] for r in summary["sites"][s]["asymmetry"]] for s in report["sites"]]
    np.testing.assert_array_equal(cells(ax), medians)
    low, high = ax.images[0].get_clim()
    assert -low == high == max(abs(v) for row in medians for v in row)  # symmetric about 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**spec, "sites": ["block1.conv"]}))
    result = CliRunner().invoke(app, ["dose-response", str(bad), "--out", str(tmp_path / "bad")])
    assert result.exit_code != 0 and "sites[0]: block1.conv is not downstream" in result.output


def test_layer_inside_a_block_matches_a_hooked_forward_pass(tmp_path: Path) -> None:
    """At block2.res2.conv1 the suffix also reads the residual stream, which each t's block must repeat; D(±1)
    at the action probabilities equals patched − original fields from hooked passes (steer.net.vfield)."""
    spec = {"seeds": [0], "layer": "block2.res2.conv1", "vector": {"kind": "cheese"}, "ts": [-1, 1]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**spec, "sites": ["block2.res2.resadd_out"]}))
    result = CliRunner().invoke(app, ["dose-response", str(path), "--out", str(tmp_path / "dose")])
    assert result.exit_code == 0, result.output
    maze = json.loads((tmp_path / "dose" / "metrics.json").read_text())["mazes"][0]
    ck, renderer = checkpoints.load(), MazeRenderer("easy")
    level = renderer.level(0)
    vec = compute_vector(ck.policy, renderer, level, PairSpec("cheese"), "block2.res2.conv1")
    assert maze["vector_norm"] == pytest.approx(float(vec.tensor.norm()), rel=1e-6)
    inputs = FieldInputs.render(renderer, level)
    original = vector_field(ck.policy, inputs).probs
    for i, t in enumerate((-1.0, 1.0)):
        patched = vector_field(ck.policy, inputs, [("block2.res2.conv1", vec.tensor, t)]).probs
        assert maze["sites"]["action_probs"]["norm"][i] == pytest.approx(
            float(np.linalg.norm(patched - original)), rel=1e-4
        )
