"""The notebooks run top to bottom on the real checkpoint through the public API, their numbers are the expected
ones, and they are stored without outputs: notebooks/quickstart.ipynb (a maze, a small study loaded back with
`steer.load_run`, two runs side by side with `steer.compare_runs`) and notebooks/reproduce-a-figure.ipynb (the
results page's layer-sweep figure drawn again from a run folder's table). About 10 s each, kernel start included."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from _harness import ROOT

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
FIGURE = ROOT / "notebooks" / "reproduce-a-figure.ipynb"


def read_notebook(path: Path = NOTEBOOK):
    return nbformat.read(path, as_version=4)


def execute(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """The code cells, run in a fresh kernel (raises on a failing cell); its temporary folders land in tmp_path."""
    # The kernel inherits TMPDIR, so the notebook's temporary folder (and the study's run folder) lands in tmp_path.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("STEER_RUN", raising=False)
    nb = read_notebook(path)
    # Working directory = the repository root, where ../shared/checkpoints resolves.
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(o.output_type != "error" for cell in code for o in cell.outputs)
    return code


def last_line(code: list) -> dict:
    (line,) = [o.text for o in code[-1].outputs if o.output_type == "stream" and o.name == "stdout"]
    return json.loads(line)


@pytest.mark.parametrize("path", [NOTEBOOK, FIGURE], ids=["quickstart", "reproduce-a-figure"])
def test_the_stored_notebook_has_no_outputs(path: Path) -> None:
    nb = read_notebook(path)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], cell.source
        assert cell.execution_count is None, cell.source
    for before, cell in pairwise(nb.cells):  # every code cell says why first
        if cell.cell_type == "code":
            assert before.cell_type == "markdown", cell.source


def test_the_notebook_runs_and_the_cheese_vector_steers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = execute(NOTEBOOK, tmp_path, monkeypatch)
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the study's field figure for the chosen maze, from run.figure

    result = last_line(code)
    assert result["seed"] == 1
    assert result["p_cheese_ds"]["original"] > 0.99
    assert result["p_cheese_ds"]["patched"] < 0.01
    assert result["study_mazes"] == 6
    change = result["study_p_cheese_ds_change"]
    assert change["n"] == 4  # seeds 0-5: 2 and 5 have no decision square
    lo, hi = change["mean_ci"]
    assert -1 <= lo <= change["mean"] <= hi < 0 and change["mean"] < -0.6

    run_dir = Path(result["run_dir"])
    assert run_dir.is_relative_to(tmp_path) and run_dir.is_dir()
    assert sorted(p.name for p in run_dir.iterdir()) == result["files"]
    assert {"metrics.json", "manifest.json", "report.html"} <= set(result["files"])
    assert [f"field-seed{s}.png" for s in range(6)] == sorted(f for f in result["files"] if f.endswith(".png"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["command"] == "apply" and metrics["summary"]["p_cheese_ds"]["change"]["mean"] == change["mean"]
    # The table load_run read: a row per maze and condition, seed 1's values those of the hand computation.
    assert result["table_rows"] == 2 * 6 and {"mazes.csv", "tables.json"} <= set(result["run_files"])
    assert set(result["run_files"]) == set(result["files"])  # every file the run wrote, and no other
    assert result["table_seed"] == {k: pytest.approx(v, abs=1e-5) for k, v in result["p_cheese_ds"].items()}
    # compare_runs: subtracting the vector lowers P(cheese | DS) on these mazes, adding it does not.
    compared = result["compared_patched"]
    assert compared["coeff -1"] < 0.5 < compared["coeff +1"]


def test_the_figure_notebook_draws_the_layer_sweep_from_the_run_s_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = execute(FIGURE, tmp_path, monkeypatch)
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the figure drawn again, and the run's own beside it
    result = last_line(code)
    run_dir = Path(result["run_dir"])
    assert run_dir.is_relative_to(tmp_path)
    report = json.loads((run_dir / "metrics.json").read_text())
    stored = {row["layer"]: row["p_cheese_ds"] for row in report["summary"]["by_layer"]}
    assert result["layers"] == report["layers"] and len(result["layers"]) == 6
    assert result["medians"] == [stored[layer]["patched"]["median"] for layer in result["layers"]]
    assert result["original"] == stored[result["layers"][0]]["original"]["median"]
    # The bars drawn are those medians (an undefined one drawn as 0).
    assert result["bars"] == [0.0 if m is None else m for m in result["medians"]]
    assert result["medians"][1] < result["original"] - 0.3  # the default layer steers away from the cheese
