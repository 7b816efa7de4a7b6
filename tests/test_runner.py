"""The shared runner's promises, through the real CLI: resumes never reuse stale results, equivalent specs are
one run, runs grow, inputs from another checkpoint are refused, and nothing fails silently."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _harness import ROOT, metrics
from typer.testing import CliRunner

from cli.main import app
from steer.errors import SteerError
from steer.net.vectors import SteeringVector
from steer.net.vfield import check_finite
from steer.run.study import run_cell

runner = CliRunner()


def test_a_recomputed_vector_file_is_a_different_run_not_a_resume(tmp_path: Path) -> None:
    vecs = tmp_path / "vecs"
    assert (
        run(
            "compute-vector",
            write_spec(tmp_path, {"seeds": [0], "vector": {"kind": "cheese"}}, "v.yaml"),
            "--out",
            vecs,
        ).exit_code
        == 0
    )
    spec = write_spec(
        tmp_path, {"seeds": [1, 2], "vector": {"file": str(vecs / "vector-cheese-seed0.safetensors")}, "coeff": -1}
    )
    out = tmp_path / "out"
    assert run("apply", spec, "--out", out).exit_code == 0
    first = metrics(out)
    assert first["provenance"]["inputs"][0]["sha256"] and first["provenance"]["inputs"][0]["matches_session"]

    # Overwrite the file with another maze's vector under the same name: the old cells must not be reused.
    vec = SteeringVector.load(vecs / "vector-cheese-seed0.safetensors")
    vec.tensor = vec.tensor * 2
    vec.save(vecs / "vector-cheese-seed0.safetensors")
    again = run("apply", spec, "--out", out)
    assert again.exit_code == 2 and "holds the results of a different run" in again.output
    forced = run("apply", spec, "--out", out, "--force")
    assert forced.exit_code == 0 and metrics(out)["reused_cells"] == 0
    assert metrics(out)["mazes"][0]["p_cheese_ds"] != first["mazes"][0]["p_cheese_ds"]


def test_equivalent_specs_are_one_run_and_a_run_grows_with_its_seeds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        run(
            "apply", write_spec(tmp_path, {"seeds": [1, 2], "vector": {"kind": "cheese"}, "coeff": -1}), "--out", out
        ).exit_code
        == 0
    )
    # -1.0 instead of -1, and a range instead of the list: the same run, every cell reused.
    same = write_spec(tmp_path, "seeds: {from: 1, to: 2}\nvector: {kind: cheese}\ncoeff: -1.0\n", "same.yaml")
    result = run("apply", same, "--out", out)
    assert result.exit_code == 0 and metrics(out)["reused_cells"] == 2, result.output
    # More seeds: the finished two are reused, the third computed.
    grown = write_spec(tmp_path, {"seeds": [1, 2, 3], "vector": {"kind": "cheese"}, "coeff": -1}, "grown.yaml")
    result = run("apply", grown, "--out", out)
    assert result.exit_code == 0 and metrics(out)["reused_cells"] == 2, result.output
    assert [m["seed"] for m in metrics(out)["mazes"]] == [1, 2, 3]
    # Fewer seeds again (a grown batch drawn again at its first size): the report holds those alone, and the
    # third cell is kept for the next larger run, which reuses all three.
    result = run("apply", same, "--out", out)
    assert result.exit_code == 0 and [m["seed"] for m in metrics(out)["mazes"]] == [1, 2], result.output
    assert "vfield-seed3.json" not in (out / "report.html").read_text()
    result = run("apply", grown, "--out", out)
    assert result.exit_code == 0 and metrics(out)["reused_cells"] == 3, result.output
    # Another coefficient is another run.
    other = write_spec(tmp_path, {"seeds": [1, 2], "vector": {"kind": "cheese"}, "coeff": 1}, "other.yaml")
    assert run("apply", other, "--out", out).exit_code == 2


def test_a_vector_file_from_another_checkpoint_is_refused_unless_allowed(tmp_path: Path) -> None:
    vecs = tmp_path / "vecs"
    made = run(
        "compute-vector",
        write_spec(tmp_path, {"seeds": [0], "vector": {"kind": "cheese"}}, "v.yaml"),
        "--out",
        vecs,
        "--checkpoint",
        "maze-rr5-easy-2M",
    )
    assert made.exit_code == 0, made.output
    data = {"seeds": [1], "vector": {"file": str(vecs / "vector-cheese-seed0.safetensors")}, "coeff": -1}
    refused = run("apply", write_spec(tmp_path, data), "--out", tmp_path / "o1")
    assert refused.exit_code == 2 and "allow_other_checkpoint: true" in refused.output
    assert "maze-rr5-easy-2M" in refused.output and not (tmp_path / "o1").exists()
    allowed = run(
        "apply", write_spec(tmp_path, {**data, "allow_other_checkpoint": True}, "a.yaml"), "--out", tmp_path / "o2"
    )
    assert allowed.exit_code == 0, allowed.output
    (entry,) = metrics(tmp_path / "o2")["provenance"]["inputs"]
    assert entry["matches_session"] is False and entry["checkpoint_sha256"].startswith("56aaec5a")


@pytest.mark.parametrize("command", ["apply", "layer-sweep"])
def test_the_value_head_is_refused_as_an_injection_layer(tmp_path: Path, command: str) -> None:
    data = {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1}
    data.update({"layer": "fc_value"} if command == "apply" else {"layers": ["block2.res1.resadd_out", "fc_value"]})
    result = run(command, write_spec(tmp_path, data), "--out", tmp_path / "o")
    assert result.exit_code == 2 and "is the value head" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_coefficient_that_overflows_float32_is_refused_before_any_output(tmp_path: Path) -> None:
    result = run(
        "apply",
        write_spec(tmp_path, {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": 1e39}),
        "--out",
        tmp_path / "o",
    )
    assert result.exit_code == 2, result.output
    assert "coeff: 1e+39 is too large" in result.output and "float32" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_non_finite_action_probabilities_stop_the_run_naming_seed_and_layer() -> None:
    class Diverging:
        layer = "block2.res1.resadd_out"

        def cell(self, session: object, seed: int, out: Path) -> None:
            check_finite(np.array([float("nan")]), [self.layer])

    with pytest.raises(SteerError) as info:
        run_cell(Diverging(), None, 1, Path("unused"))
    assert str(info.value).startswith("seed 1: the action probabilities are not finite")
    assert "block2.res1.resadd_out" in str(info.value)


def test_a_run_where_every_maze_is_skipped_exits_non_zero(tmp_path: Path) -> None:
    # Easy seed 28 fills the world: no path to the top-right corner can be opened.
    result = run(
        "apply",
        write_spec(tmp_path, {"seeds": [28], "vector": {"kind": "top_right"}, "coeff": 1}),
        "--out",
        tmp_path / "o",
    )
    assert result.exit_code == 2 and "every one of the 1 mazes was skipped (seed 28" in result.output
    assert metrics(tmp_path / "o")["skipped"][0]["seed"] == 28  # the report says why


def test_batch_checks_every_layer_before_the_first_experiment_runs(tmp_path: Path) -> None:
    batch = write_spec(
        tmp_path,
        {
            "experiments": [
                {"name": "ok", "command": "apply", "spec": {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1}},
                {
                    "name": "bad",
                    "command": "apply",
                    "spec": {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1, "layer": "block9"},
                },
            ]
        },
        "batch.yaml",
    )
    result = run("batch", batch, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "experiment 'bad' (apply): layer: 'block9'" in result.output
    assert not (tmp_path / "out").exists()


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"seeds": [1, 2], "vector": {"kind": "cheese"}, "coeff": -1})
    done = subprocess.run(
        # One process: the progress lines are the parent's whatever runs the cells, and no worker pool to start.
        [sys.executable, "-m", "cli.main", "apply", str(spec), "--out", str(tmp_path / "o"), "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # The line names the cell that finished last (with workers, either).
    assert re.search(r"^apply: 2/2 cells \(last: seed [12]\), \d+ s$", done.stderr, re.M), done.stderr
    assert "\x1b" not in done.stderr  # no terminal control codes
    help_text = runner.invoke(app, ["apply", "--help"], env={"COLUMNS": "250"}).output
    assert "Output folder (default: outputs/<spec name>/)." in help_text  # Rich once read [default: …] as markup


def test_output_files_get_the_users_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        assert (
            run(
                "apply",
                write_spec(tmp_path, {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1}),
                "--out",
                tmp_path / "o",
            ).exit_code
            == 0
        )
    finally:
        os.umask(old)
    for name in ("metrics.json", "manifest.json", "field-seed1.png", "vfield-seed1.json"):
        assert (tmp_path / "o" / name).stat().st_mode & 0o777 == 0o644, name


def test_zero_vector_files_apply_but_a_nan_vector_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "nan.pt"
    SteeringVector("block2.res1.resadd_out", torch.full((32, 16, 16), float("nan")), "cheese").save(bad)
    result = run(
        "apply",
        write_spec(tmp_path, {"seeds": [1], "vector": {"file": str(bad)}, "coeff": -1}),
        "--out",
        tmp_path / "o",
    )
    assert result.exit_code == 2 and "vector.file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
