"""The `steer` command end to end, and every bad input it must refuse cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _cli import run, write_spec
from _harness import ROOT
from _tables import check_tables
from PIL import Image

from steer.net.vectors import SteeringVector
from steer.run.cores import usable_cores


def test_demo_config_writes_png_field_json_and_metrics(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run("apply", ROOT / "configs" / "demo.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    png = Image.open(out / "field-seed1.png")
    assert png.width >= 760 and png.height >= 300
    assert (out / "report.html").is_file()
    field = json.loads((out / "vfield-seed1.json").read_text())
    assert field["seed"] == 1 and field["world_dim"] == 15 and field["maze_dim"] == 11
    n = len(field["positions"])
    assert n == 70  # the 11x11 maze of seed 1 has 71 open squares, one of them the cheese
    for side in ("original", "patched"):
        assert len(field[side]["probs"]) == n and all(len(p) == 15 for p in field[side]["probs"])
        assert len(field[side]["arrows"]) == n
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["command"] == "apply"
    prov = metrics["provenance"]
    assert prov["checkpoint"]["sha256"].startswith("e82e620e") and prov["layer"] == "block2.res1.resadd_out"
    assert prov["machine"]["cpu"] and prov["machine"]["isa"]  # numbers name the machine they came from
    maze = metrics["mazes"][0]
    assert maze["coeff"] == -1 and maze["decision_square"] is not None
    # the demo is chosen to show the effect: the agent turns to the cheese, and with the vector it does not
    assert maze["p_cheese_ds"]["original"] > 0.9 and maze["p_cheese_ds"]["patched"] < 0.1
    assert set(metrics["summary"]) >= {"p_cheese_ds", "p_top_right_ds", "mean_tv", "p_toward_cheese"}


def test_compute_vector_then_apply_the_file_to_another_seed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"seeds": [2], "vector": {"kind": "cheese"}})
    result = run("compute-vector", spec, "--out", tmp_path / "vecs")
    assert result.exit_code == 0, result.output
    vec = SteeringVector.load(tmp_path / "vecs" / "vector-cheese-seed2.safetensors")
    assert vec.layer == "block2.res1.resadd_out" and vec.tensor.shape == (32, 16, 16)
    assert vec.meta["source_seed"] == 2 and vec.meta["checkpoint_sha256"].startswith("e82e620e")
    assert vec.meta["pair"] == {"kind": "cheese", "a": [], "b": ["remove_cheese"]}
    check_tables(tmp_path / "vecs")

    vec_file = str(tmp_path / "vecs" / "vector-cheese-seed2.safetensors")
    spec2 = write_spec(tmp_path, {"seeds": [1, 2], "vector": {"file": vec_file}, "coeff": -1}, "apply.yaml")
    result = run("apply", spec2, "--out", tmp_path / "applied")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "applied" / "metrics.json").read_text())
    assert [m["vector_source_seed"] for m in metrics["mazes"]] == [2, 2]
    assert (tmp_path / "applied" / "field-seed1.png").exists()


def test_top_right_on_a_maze_that_fills_the_world_is_skipped_not_crashed(tmp_path: Path) -> None:
    # Easy seed 28 is 15x15 in a 15x15 world: no margin to open a path through.
    spec = write_spec(tmp_path, {"seeds": [28, 1], "vector": {"kind": "top_right"}, "coeff": 1})
    result = run("apply", spec, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [m["seed"] for m in metrics["mazes"]] == [1]
    assert metrics["skipped"][0]["seed"] == 28 and "no margin" in metrics["skipped"][0]["reason"]


GOOD = {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1}

BAD_SPECS = [
    ({**GOOD, "seed": [1]}, "seed: `steer apply` does not use this key. Did you mean `seeds`?"),  # features' key
    ({**GOOD, "vector": {"knd": "cheese"}}, "vector.knd: unknown key"),
    ({**GOOD, "coef": -1}, "coef: unknown key. Did you mean `coeff`?"),
    ({**GOOD, "vector": {"kind": "cheddar"}}, "vector.kind: 'cheddar' is not one of"),
    ({**GOOD, "coeff": "lots"}, "coeff: expected a number"),
    ({**GOOD, "coeff": float("nan")}, "coeff: nan is not a finite number"),
    ({**GOOD, "coeff": float("inf")}, "coeff: inf is not a finite number"),
    ({**GOOD, "seeds": [1, -3]}, "seeds[1]: -3 is out of range"),
    ({**GOOD, "seeds": [1.5]}, "seeds[0]: expected an integer"),
    ({**GOOD, "seeds": []}, "seeds: the list is empty"),
    ({**GOOD, "seeds": "zero"}, "seeds: expected a list"),
    ({**GOOD, "layer": "block2.res9"}, "layer: 'block2.res9' is not a hook point"),
    ({**GOOD, "distribution_mode": "extreme"}, "distribution_mode: 'extreme' is not one of"),
    ({**GOOD, "checkpoint": "/nowhere/model.pth"}, "checkpoint: file '/nowhere/model.pth' does not exist"),
    ({**GOOD, "target_edits": [{"cheese": [1]}]}, "target_edits[0].cheese: expected a square"),
    ({"seeds": [1], "vector": {"kind": "cheese"}}, "coeff: missing"),
    ("seeds: [1\nvector: {kind: cheese}\n", "is not valid YAML at line"),
    ("", "is empty"),
]


@pytest.mark.parametrize("spec,message", BAD_SPECS, ids=[m.split(":")[0] for _, m in BAD_SPECS])
def test_bad_specs_get_one_clear_error_and_no_output(tmp_path: Path, spec: object, message: str) -> None:
    path = write_spec(tmp_path, spec)
    out = tmp_path / "out"
    result = run("apply", path, "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    assert not out.exists()


def test_corrupt_checkpoint_is_refused_before_any_output(tmp_path: Path) -> None:
    bad = tmp_path / "truncated.pth"
    bad.write_bytes((Path(__file__).parent / "conftest.py").read_bytes())
    out = tmp_path / "out"
    result = run("apply", write_spec(tmp_path, GOOD), "--out", out, "--checkpoint", bad)
    assert result.exit_code == 2 and "could not be read as a PyTorch checkpoint" in result.output
    assert "--checkpoint PATH" in result.output and not out.exists()


@pytest.mark.parametrize("device", ["cuda", "tpu"])
def test_a_device_this_machine_lacks_is_refused_before_any_output(tmp_path: Path, device: str) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    result = run("apply", write_spec(tmp_path, GOOD), "--out", out, "--device", device)
    assert result.exit_code == 2, result.output
    assert f"--device: '{device}' is not available here" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_vector_file_of_another_layer_shape_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    SteeringVector("block2.res1.resadd_out", torch.zeros(16, 32, 32), "cheese").save(wrong)
    spec = write_spec(tmp_path, {"seeds": [1], "vector": {"file": str(wrong)}, "coeff": -1})
    out = tmp_path / "out"
    result = run("apply", spec, "--out", out)
    assert result.exit_code == 2, result.output
    assert "shape (16, 32, 32) cannot be added at 'block2.res1.resadd_out'" in result.output
    assert not out.exists()


def test_missing_spec_and_unwritable_output(tmp_path: Path) -> None:
    result = run("apply", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "spec: " in result.output and "does not exist" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("apply", write_spec(tmp_path, GOOD), "--out", blocker / "sub")
    assert result.exit_code == 2 and "--out: cannot write" in result.output


def test_interrupted_run_resumes_without_recomputing_and_matches_a_clean_run(tmp_path: Path) -> None:
    from steer import STUDIES, open_session, run_study

    apply = STUDIES["apply"]
    spec = apply.load(
        write_spec(tmp_path, {"name": "resume", "seeds": [1, 2, 3, 4], "vector": {"kind": "cheese"}, "coeff": -1})
    )
    session = open_session(spec)
    out = tmp_path / "run"

    def stop_after_two(seed: int) -> None:
        if seed == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(apply, spec, session, out, on_cell=stop_after_two)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and sorted(manifest["cells"]) == ["seed-1", "seed-2"]
    assert not (out / "metrics.json").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "field-seed1.png", "vfield-seed1.json", "field-seed2.png", "vfield-seed2.json"]
    )
    first_png = (out / "field-seed1.png").stat().st_mtime_ns

    report = run_study(apply, spec, session, out)
    assert report["reused_cells"] == 2 and [m["seed"] for m in report["mazes"]] == [1, 2, 3, 4]
    assert (out / "field-seed1.png").stat().st_mtime_ns == first_png  # reused, not rewritten
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["checkpoint_sha256"].startswith("e82e620e")

    clean = run_study(apply, spec, session, tmp_path / "clean")
    assert clean["mazes"] == report["mazes"] and clean["summary"] == report["summary"]
    assert (out / "mazes.csv").read_bytes() == (tmp_path / "clean" / "mazes.csv").read_bytes()


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_hard_killed_run_resumes_from_its_cell_journal(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to update the manifest; the cells journal still says what finished."""
    spec = write_spec(tmp_path, {"seeds": {"from": 0, "to": 19}, "vector": {"kind": "cheese"}, "coeff": -1})
    out = tmp_path / "run"
    journal = out / "cells.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "apply", str(spec), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and journal.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    workers = _children(proc.pid)
    assert workers or usable_cores() == 1  # the default spreads cells over worker processes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "worker processes outlived their parent"
    killed = json.loads((out / "manifest.json").read_text())
    assert killed["status"] == "running" and not killed["cells"]  # the manifest never saw a cell
    with journal.open("ab") as f:
        f.write(b'{"cell": "seed-19", "rec')  # a line torn by the kill
    result = run("apply", spec, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["reused_cells"] >= 3 and len(report["mazes"]) == 20
    assert not journal.exists()  # folded into the manifest
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["cells"]) == 20
    assert run("apply", spec, "--out", tmp_path / "clean").exit_code == 0
    clean = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    assert clean["mazes"] == report["mazes"]


def test_a_different_run_is_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run("apply", write_spec(tmp_path, GOOD), "--out", out).exit_code == 0
    other = write_spec(tmp_path, {**GOOD, "coeff": 2}, "other.yaml")
    result = run("apply", other, "--out", out)
    assert result.exit_code == 2 and "holds the results of a different run" in result.output
    assert "--force" in result.output
    assert json.loads((out / "metrics.json").read_text())["mazes"][0]["coeff"] == -1
    result = run("apply", other, "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["mazes"][0]["coeff"] == 2
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = run("apply", write_spec(tmp_path, GOOD), "--out", foreign)
    assert result.exit_code == 2 and "did not write" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("mode", ["easy", "hard"])
def test_workers_give_the_same_results_as_one_process(tmp_path: Path, mode: str, monkeypatch) -> None:
    # Workers are other processes, each with its own environment; the parent has a torch thread per core (as
    # if no other process ran) and runs its cells on one. The bits must not depend on any of that.
    import steer.run.cores

    monkeypatch.setattr(steer.run.cores, "busy_elsewhere", lambda: 0)
    spec = write_spec(
        tmp_path, {"seeds": [1, 2, 3, 5], "vector": {"kind": "cheese"}, "coeff": -1, "distribution_mode": mode}
    )
    assert run("apply", spec, "--out", tmp_path / "one", "--workers", "1").exit_code == 0
    result = run("apply", spec, "--out", tmp_path / "two", "--workers", "2")
    assert result.exit_code == 0, result.output
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one["mazes"] == two["mazes"]
    assert (tmp_path / "one" / "mazes.csv").read_bytes() == (tmp_path / "two" / "mazes.csv").read_bytes()
    for seed in (1, 2, 3, 5):
        a = json.loads((tmp_path / "one" / f"vfield-seed{seed}.json").read_text())
        b = json.loads((tmp_path / "two" / f"vfield-seed{seed}.json").read_text())
        assert a == b


def test_a_full_disk_mid_run_is_one_clear_error_with_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    import errno
    import os as os_module

    import steer.io

    real_fsync = os_module.fsync
    calls = {"n": 0}

    def fsync_until_full(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 4:  # the manifest and the first cell's files fit; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(steer.io.os, "fsync", fsync_until_full)
    spec = write_spec(tmp_path, {"seeds": [1, 2, 3], "vector": {"kind": "cheese"}, "coeff": -1})
    out = tmp_path / "out"
    result = run("apply", spec, "--out", out, "--workers", "1")  # in this process, where fsync is patched
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and "run the same command again to resume" in result.output
    assert "Traceback" not in result.output
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for p in out.glob("*.json"):
        json.loads(p.read_text())  # every file that exists is whole

    monkeypatch.setattr(steer.io.os, "fsync", real_fsync)
    result = run("apply", spec, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "metrics.json").read_text())["mazes"]) == 3


@pytest.mark.parametrize(
    "layer", ["block2.res1.resadd_out", "embedder.block2.res1.resadd_out", "block3.res1.resadd_out"]
)
def test_an_explicit_layer_that_is_not_the_vector_files_layer_is_refused_naming_layer(
    tmp_path: Path, layer: str
) -> None:
    # The default layer written out explicitly used to slip through (the spec could not tell "given" from
    # "defaulted") and run silently at the file's block2.res2 layer.
    vec = SteeringVector("block2.res2.resadd_out", torch.zeros(32, 16, 16), "cheese", {"source_seed": 0})
    vec.save(tmp_path / "vec.pt")
    spec = write_spec(
        tmp_path, {"seeds": [1], "layer": layer, "vector": {"file": str(tmp_path / "vec.pt")}, "coeff": -1}
    )
    result = run("apply", spec, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: layer: ") and "block2.res2.resadd_out" in result.output
    assert not (tmp_path / "o").exists()


def test_a_layer_that_restates_the_vector_files_layer_is_accepted(tmp_path: Path) -> None:
    vec = SteeringVector("block2.res2.resadd_out", torch.zeros(32, 16, 16), "cheese", {"source_seed": 0})
    vec.save(tmp_path / "vec.pt")
    spec = write_spec(
        tmp_path,
        {
            "seeds": [1],
            "layer": "embedder.block2.res2.resadd_out",
            "vector": {"file": str(tmp_path / "vec.pt")},
            "coeff": -1,
        },
    )
    result = run("apply", spec, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["provenance"]["layer"] == "block2.res2.resadd_out"
