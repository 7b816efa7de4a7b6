"""The cheese-vector result of Turner et al., measured on the real default checkpoint (easy mode).

`configs/cheese-vector.yaml` runs seeds 0-99; this checks the same spec on seeds 0-49 (about 25 mazes
with a decision square) so that the suite stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from _harness import ROOT
from typer.testing import CliRunner

from cli.main import app


def _apply(tmp_path: Path, coeff: float) -> dict:
    spec = yaml.safe_load((ROOT / "configs" / "cheese-vector.yaml").read_text())
    spec.update(seeds={"from": 0, "to": 49}, coeff=coeff)
    path = tmp_path / f"spec{coeff}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["apply", str(path), "--out", str(tmp_path / f"out{coeff}")])
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / f"out{coeff}" / "metrics.json").read_text())["summary"]


def test_subtracting_the_cheese_vector_makes_the_agent_ignore_cheese(tmp_path: Path) -> None:
    summary = _apply(tmp_path, -1.0)
    p = summary["p_cheese_ds"]
    assert p["original"]["n"] >= 15
    assert p["original"]["median"] > 0.8
    assert p["patched"]["median"] < 0.2


def test_adding_the_cheese_vector_changes_little(tmp_path: Path) -> None:
    p = _apply(tmp_path, 1.0)["p_cheese_ds"]
    assert abs(p["patched"]["median"] - p["original"]["median"]) < 0.1
