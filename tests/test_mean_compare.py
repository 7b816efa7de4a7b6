"""An averaged (mean-difference) vector against single-maze vectors: `transfer`'s mean row and `apply`'s
`compare: [own]`, end to end on the real checkpoint (small easy mazes), and their bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from _charts import cells, line, nan, panels, references
from _tables import check_tables
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from steer.analysis.comparison import mean_label
from steer.errors import SteerError
from steer.report.figures import figure_bytes
from steer.report.transfer_figs import matrix_chart, mean_chart
from steer.studies import STUDIES
from steer.studies.apply import own_chart

runner = CliRunner()


def nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


# Seeds 0 (3x3) and 29 (5x5) have decision squares; the mean averages mazes 0-2, so target 0 is in sample and
# 29 held out. Seed 3 (9x9) is a target only.
MEAN = {"kind": "cheese", "source_seeds": [0, 1, 2]}


def run(tmp_path: Path, command: str, spec: dict, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, [command, str(path), "--out", str(tmp_path / name)])
    return result, tmp_path / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path, Path]:
    tmp = tmp_path_factory.mktemp("mean-compare")
    t, t_out = run(tmp, "transfer", {"sources": [0, 29], "targets": [0, 29, 3], "vector": MEAN, "coeff": -1}, "t")
    assert t.exit_code == 0, t.output
    a, a_out = run(tmp, "apply", {"seeds": [0, 29, 3], "vector": MEAN, "coeff": -1, "compare": ["own"]}, "a")
    assert a.exit_code == 0, a.output
    assert "vs own (held out mazes)" in a.output and "mean of seeds 0-2 (3 mazes) vs own" in t.output
    load = lambda out: json.loads((out / "metrics.json").read_text())  # noqa: E731
    return load(t_out), load(a_out), t_out, a_out


def test_transfer_mean_row_is_apply_with_the_mean_vector(runs: tuple[dict, dict, Path, Path]) -> None:
    transfer, apply, t_out, a_out = runs
    row = transfer["mean_row"]
    assert row["label"] == "mean of seeds 0-2 (3 mazes)" and row["in_sample"] == [True, False, False]
    assert transfer["mean_vector"]["source_seeds"] == [0, 1, 2]
    by_seed = {m["seed"]: m for m in apply["mazes"]}
    for j, target in enumerate(transfer["targets"]):
        pair = transfer["mean_pairs"][j]
        assert pair["target"] == target
        for key in ("p_cheese_ds", "p_toward_cheese"):
            got, want = pair["metrics"][key]["patched"], by_seed[target][key]["patched"]
            assert (got is None) == (want is None) and (got is None or abs(got - want) < 1e-5), (target, key)
        assert abs(pair["mean_tv"] - by_seed[target]["mean_tv"]) < 1e-5
    # apply's own vector is transfer's diagonal: the same vector on the same maze.
    diag = {p["target"]: p for p in transfer["pairs"] if p["source"] == p["target"]}
    for seed in (0, 29):
        own = by_seed[seed]["compare"]["own"]
        assert abs(own["p_cheese_ds"]["patched"] - diag[seed]["metrics"]["p_cheese_ds"]["patched"]) < 1e-5
        assert own["in_sample"] == (seed == 0)
    # The averaged vector barely moves these mazes; each own vector moves its decision square by more than 0.3.
    block = transfer["summary"]["by_source"]["delta_p_cheese_ds"]
    assert set(block) == {"all", "held_out", "in_sample"}
    assert block["all"]["own"]["n"] == 2 and block["all"]["own"]["mean"] < -0.3
    assert block["all"]["mean_minus_own"]["mean"] > 0.3 and "wilcoxon_p" in block["all"]["mean_minus_own"]
    assert block["held_out"]["targets"] == 2 and block["in_sample"]["targets"] == 1
    c = apply["summary"]["compare"]
    assert c["by_target"]["delta_p_cheese_ds"]["all"]["vector_minus_own"]["mean"] > 0.3
    assert abs(c["norms"]["vector"]["median"] - transfer["mean_vector"]["norm"]) < 1e-4
    assert c["norms"]["own"]["n"] == 3
    for out, name in ((t_out, "transfer-mean-vs-own.png"), (t_out, "transfer-matrix.png"), (a_out, "compare-own.png")):
        assert Image.open(out / name).size[0] >= 560
    check_tables(t_out)
    check_tables(a_out)


def test_the_means_seeds_are_part_of_the_run_identity() -> None:
    study = STUDIES["transfer"]
    base = {"seeds": [0, 29], "coeff": -1}
    one = study.parse({**base, "vector": {"kind": "cheese", "source_seeds": [0, 1]}})
    same = study.parse({**base, "vector": {"kind": "cheese", "source_seeds": {"from": 0, "to": 1}}})
    other = study.parse({**base, "vector": {"kind": "cheese", "source_seeds": [0, 2]}})
    plain = study.parse({**base, "vector": {"kind": "cheese"}})
    ids = [s.identity(keep_seeds=True) for s in (one, same, other, plain)]
    assert ids[0] == ids[1] and ids[0] != ids[2] and ids[0] != ids[3]


@pytest.mark.parametrize(
    ("command", "spec", "message"),
    [
        (
            "transfer",
            {"seeds": [0], "coeff": -1, "vector": {"kind": "cheese", "source_seeds": []}},
            "vector.source_seeds: the list is empty",
        ),
        (
            "transfer",
            {"seeds": [0], "coeff": -1, "vector": {"file": "v.pt", "source_seeds": [0, 1]}},
            "vector.source_seeds: a vector file is already computed",
        ),
        (
            "apply",
            {"seeds": [0], "coeff": -1, "vector": {"file": "v.pt"}, "compare": ["own"]},
            "compare: own builds each target's own vector from the spec's pair",
        ),
        (
            "apply",
            {"seeds": [0], "coeff": -1, "vector": {"kind": "cheese"}, "compare": ["own"]},
            "already is each target's own",
        ),
        (
            "apply",
            {"seeds": [0], "coeff": -1, "vector": MEAN, "compare": ["others"]},
            "compare[0]: 'others' is not a comparison; use own.",
        ),
    ],
)
def test_bad_mean_comparisons_are_refused(command: str, spec: dict, message: str) -> None:
    with pytest.raises(SteerError, match=message.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        STUDIES[command].parse(spec)


def test_bad_comparison_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    result, out = run(
        tmp_path, "apply", {"seeds": [0], "coeff": -1, "vector": {"kind": "cheese"}, "compare": ["own"]}, "bad"
    )
    assert result.exit_code == 2 and "compare: own compares" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_charts_show_the_runs_numbers(runs: tuple[dict, dict, Path, Path]) -> None:
    """transfer's matrix and mean-vs-own charts and apply's compare-own chart, drawn again from metrics.json."""
    transfer, apply, _, _ = runs
    (ax,) = panels(matrix_chart(transfer, "run"))
    # The matrix: a row per source, then the averaged vector's row below a divider; white is 0, the colour
    # limits symmetric at the largest |effect|.
    effect = [*transfer["matrices"]["effect"], transfer["mean_row"]["effect"]]
    np.testing.assert_array_equal(cells(ax), [nan(row) for row in effect])
    low, high = ax.images[0].get_clim()
    assert -low == high == max(abs(v) for row in effect for v in row if v is not None)
    assert [ln.get_ydata()[0] for ln in ax.lines] == [len(transfer["sources"]) - 0.5]
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == transfer["mean_row"]["label"]
    # Mean vs own: per target the averaged vector's effect, the target's own (the matrix's diagonal) and the
    # mean over the other single sources; target 0 (in sample) starred.
    (ax,) = panels(mean_chart(transfer, "run"))
    by = {(p["source"], p["target"]): p["delta_p_cheese_ds"] for p in transfer["pairs"]}
    targets = transfer["summary"]["by_source"]["targets"]
    assert list(line(ax, transfer["mean_row"]["label"]).get_ydata()) == [
        p["delta_p_cheese_ds"] for p in transfer["mean_pairs"]
    ]
    assert list(nan_to_none(line(ax, "the target's own vector").get_ydata())) == [by.get((t, t)) for t in targets]
    others = [[by[(s, t)] for s in (0, 29) if s != t and by[(s, t)] is not None] for t in targets]
    assert list(line(ax, "mean over the other single sources").get_ydata()) == pytest.approx(
        [sum(o) / len(o) for o in others]
    )
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0*", "29", "3"]
    assert references(ax) == [0.0]
    # apply's own comparison: the spec's vector and each maze's own, on the kind's effect metric.
    (ax,) = panels(own_chart(apply["vector"], apply["mazes"], "p_cheese_ds", "run"))
    have = [m for m in apply["mazes"] if m["compare"]["own"] is not None]
    change = lambda v: v["patched"] - v["original"]  # noqa: E731
    assert list(line(ax, mean_label(apply["vector"]["source_seeds"])).get_ydata()) == pytest.approx(
        [change(m["p_cheese_ds"]) for m in have]
    )
    assert list(line(ax, "the maze's own vector").get_ydata()) == pytest.approx(
        [change(m["compare"]["own"]["p_cheese_ds"]) for m in have]
    )


def test_a_chart_drawn_twice_gives_the_same_bytes(runs: tuple[dict, dict, Path, Path]) -> None:
    """Resume and Ray compare bytes: the same numbers drawn twice, and one figure saved again, give the same PNG,
    SVG and PDF (the heat map: cells, text, a divider and a colour bar)."""
    first, second = matrix_chart(runs[0], "run"), matrix_chart(runs[0], "run")
    for fmt in ("png", "svg", "pdf"):
        once = figure_bytes(first, fmt)
        assert once == figure_bytes(second, fmt) == figure_bytes(first, fmt), fmt
