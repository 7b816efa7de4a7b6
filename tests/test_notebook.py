"""notebooks/quickstart.ipynb runs top to bottom on the real checkpoint through the public API, its numbers are the
expected ones, and it is stored without outputs. Executing it takes about 10 s (kernel start included)."""

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


def read_notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_the_stored_notebook_has_no_outputs() -> None:
    nb = read_notebook()
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
    # The kernel inherits TMPDIR, so the notebook's temporary folder (and the study's run folder) lands in tmp_path.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = read_notebook()
    # Working directory = the repository root, where ../shared/checkpoints resolves. Raises on a failing cell.
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(o.output_type != "error" for cell in code for o in cell.outputs)
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the study's field figure for the chosen maze

    (line,) = [o.text for o in code[-1].outputs if o.output_type == "stream" and o.name == "stdout"]
    result = json.loads(line)
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
