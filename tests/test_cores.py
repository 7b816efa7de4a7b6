"""Cores and workers: the default executor on a shared machine (steer/run/cores.py, steer/run/runner.py)."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import torch

from steer.run import runner
from steer.run.cores import busy_elsewhere, usable_cores, use_free_cores
from steer.studies import run_spec


def _spin() -> None:
    while True:
        pass


@pytest.mark.skipif(usable_cores() < 2, reason="needs two cores: one to keep busy, one to measure on")
def test_in_process_work_leaves_a_core_another_process_is_running_on() -> None:
    before = torch.get_num_threads()
    busy = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    busy.start()
    try:
        deadline = time.monotonic() + 30
        while busy_elsewhere() < 1 and time.monotonic() < deadline:  # until it has started spinning
            time.sleep(0.1)
        assert busy_elsewhere() >= 1
        # /proc/loadavg's runnable count is an instant's: a later sample can miss the spinner while the scheduler
        # has it off the CPU (seen once in a full run), so sample again until the deadline, as above.
        threads = use_free_cores()
        while threads >= usable_cores() and time.monotonic() < deadline:
            time.sleep(0.1)
            threads = use_free_cores()
        assert threads == torch.get_num_threads() < usable_cores()
    finally:
        busy.terminate()
        busy.join()
        torch.set_num_threads(before)


def test_the_default_is_one_worker_per_usable_core() -> None:
    import os

    assert runner.default_workers() == usable_cores() == len(os.sched_getaffinity(0))


def test_runs_share_one_pool_of_workers_and_a_new_checkpoint_replaces_it(tmp_path) -> None:
    import yaml

    from steer.net import checkpoints

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"seeds": [1, 2], "vector": {"kind": "cheese"}, "coeff": -1}))
    first = run_spec("apply", spec, tmp_path / "a", workers=2)
    pool = runner._pool
    assert pool is not None
    second = run_spec("apply", spec, tmp_path / "b", workers=2)
    assert runner._pool is pool  # the same processes: no second start-up
    assert first["mazes"] == second["mazes"]
    # A copy of the checkpoint under another path is another session: its pool replaces the old one.
    copy = tmp_path / "copy.pth"
    copy.write_bytes(checkpoints.load().path.read_bytes())
    run_spec("apply", spec, tmp_path / "c", checkpoint=str(copy), workers=2)
    assert runner._pool is not None and runner._pool is not pool


@pytest.mark.parametrize(
    "command, spec",
    [
        (
            "dose-response",  # three sites (a ReLU, a residual, the logits) rather than all twenty: a third of the time
            {
                "seeds": [0, 29],
                "vector": {"kind": "top_right"},
                "ts": [-1, 0.1, 1],
                "sites": ["block2.res2.relu1_out", "block3.res1.resadd_out", "fc_policy"],
            },
        ),
        (
            "compose",
            {
                "seeds": [0, 29],
                "vectors": [
                    {"vector": {"kind": "cheese"}, "coeff": -1},
                    {"vector": {"kind": "top_right"}, "coeff": 1},
                ],
            },
        ),
    ],
)
def test_a_runs_bytes_do_not_depend_on_where_its_cells_ran(tmp_path, monkeypatch, command: str, spec: dict) -> None:
    # These studies sum float32 activations, which rounds differently on two threads than on one; in-process
    # cells run on one thread like the workers', with the parent on two threads (as if no other process ran).
    import yaml
    from typer.testing import CliRunner

    import steer.run.cores
    from cli.main import app

    monkeypatch.setattr(steer.run.cores, "busy_elsewhere", lambda: 0)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    for workers in ("1", "2"):
        result = CliRunner().invoke(app, [command, str(path), "--out", str(tmp_path / workers), "--workers", workers])
        assert result.exit_code == 0, result.output
    one, two = ((tmp_path / w / "metrics.json").read_bytes() for w in ("1", "2"))
    assert one == two
