"""`--executor ray`: the same bytes as `--executor local`, runs that resume across executors, and its bad input.

The Ray tests share one local Ray cluster of 2 CPUs, started and stopped by a module fixture (steer uses a
cluster it finds connected and leaves it running); they skip only where the `ray` extra is not installed.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from _cli import run

from steer.run import executors

needs_ray = pytest.mark.skipif(
    find_spec("ray") is None, reason='the ray extra is not installed (pip install -e ".[ray]")'
)
APPLY = {"vector": {"kind": "cheese"}, "coeff": -1}
BATCH = {
    "name": "tiny",
    "experiments": [
        {"name": "minus", "command": "apply", "spec": {**APPLY, "seeds": [1, 2, 3]}},
        {"name": "plus", "command": "apply", "spec": {**APPLY, "seeds": [2, 5]}, "set": {"coeff": 1}},
    ],
}


def write(folder: Path, data: object, name: str) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_unknown_executor_or_an_address_without_ray_is_refused_before_any_work(tmp_path: Path) -> None:
    spec = write(tmp_path, {**APPLY, "seeds": [1]}, "spec.yaml")
    result = run("apply", spec, "--out", tmp_path / "o", "--executor", "dask")
    assert result.exit_code == 2 and "--executor: 'dask' is not an executor; use local" in result.output
    result = run("apply", spec, "--out", tmp_path / "o", "--address", "10.0.0.5:6379")
    assert result.exit_code == 2 and "--address: '10.0.0.5:6379' names a Ray cluster" in result.output
    assert "Add --executor ray" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_missing_ray_extra_names_the_install_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    batch = write(tmp_path, BATCH, "batch.yaml")
    result = run("batch", batch, "--out", tmp_path / "o", "--executor", "ray")
    assert result.exit_code == 2, result.output
    assert "ray needs the Ray package" in result.output and 'pip install -e ".[ray]"' in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_started_shuts_down_only_the_ray_it_started(monkeypatch) -> None:
    calls: list[str] = []
    fake = SimpleNamespace(
        is_initialized=lambda: "init" in calls and "shutdown" not in calls,
        # A new local instance, quiet: not a cluster RAY_ADDRESS or a stale `ray start` names, no worker logs.
        init=lambda **kw: calls.append("init") if kw["address"] == "local" and not kw["log_to_driver"] else None,
        shutdown=lambda: calls.append("shutdown"),
    )
    monkeypatch.setitem(sys.modules, "ray", fake)
    with executors.started("ray", None):
        assert calls == ["init"]
        with executors.started("ray", None):  # a run inside a batch: the batch's Ray is used and left running
            pass
        assert calls == ["init"]
    assert calls == ["init", "shutdown"]
    with executors.started("local", None):
        pass
    assert calls == ["init", "shutdown"]


def test_chunks_give_every_cpu_several_tasks_and_stay_small() -> None:
    assert executors.chunk_size(4, 2) == 1  # a tiny run: one seed per task
    assert executors.chunk_size(40, 2) == 5  # 8 tasks for 2 CPUs
    assert executors.chunk_size(1700, 2) == executors.MAX_CHUNK  # a long run: many tasks of 8, not 8 of 213
    assert executors.chunk_size(1, 64) == 1


@needs_ray
def test_an_unreachable_address_is_one_clear_error_within_seconds(tmp_path: Path) -> None:
    import ray

    assert not ray.is_initialized()  # runs before the fixture below connects this process
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = write(tmp_path, {**APPLY, "seeds": [1]}, "spec.yaml")
    start = time.monotonic()
    result = run("apply", spec, "--out", tmp_path / "o", "--executor", "ray", "--address", f"127.0.0.1:{port}")
    assert result.exit_code == 2, result.output
    assert f"--address: nothing answers at '127.0.0.1:{port}'" in result.output and "ray start --head" in result.output
    assert time.monotonic() - start < 15 and not (tmp_path / "o").exists()
    result = run("apply", spec, "--out", tmp_path / "o", "--executor", "ray", "--address", "headnode")
    assert result.exit_code == 2 and "is not HOST:PORT" in result.output


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def page(folder: Path) -> str:
    """report.html without its folder's path and the run's start and end times."""
    text = (folder / "report.html").read_text().replace(str(folder), "FOLDER")
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "TIME", text)


def cells(folder: Path) -> dict:
    """The manifest's cell records without their finishing times."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return {k: {f: v for f, v in rec.items() if f not in ("finished", "check")} for k, rec in manifest["cells"].items()}


@needs_ray
def test_a_batch_on_ray_writes_the_same_bytes_as_local(tmp_path: Path, cluster) -> None:
    batch = write(tmp_path, BATCH, "batch.yaml")
    result = run("batch", batch, "--out", tmp_path / "local")
    assert result.exit_code == 0, result.output
    result = run("batch", batch, "--out", tmp_path / "ray", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert cluster.is_initialized()  # steer did not stop the cluster it found
    local, remote = files(tmp_path / "local"), files(tmp_path / "ray")
    assert sorted(local) == sorted(remote)
    assert len([n for n in local if n.endswith(".png")]) == 5
    for name in local:
        # The manifest holds times, and report.html its folder's path: compared below without those.
        if not name.endswith(("manifest.json", "report.html")):
            assert local[name] == remote[name], name
    for exp in ("minus", "plus"):
        assert cells(tmp_path / "local" / exp) == cells(tmp_path / "ray" / exp)
        assert page(tmp_path / "ray" / exp) == page(tmp_path / "local" / exp)


@needs_ray
def test_a_run_interrupted_on_one_executor_resumes_on_the_other(tmp_path: Path, cluster) -> None:
    from steer import STUDIES, open_session, run_study

    apply = STUDIES["apply"]
    spec = apply.parse({**APPLY, "name": "resume", "seeds": [1, 2, 3, 5]})
    session = open_session(spec)
    clean = run_study(apply, spec, session, tmp_path / "clean")

    def stop_after(count: int):
        seen: list[int] = []

        def on_cell(seed: int) -> None:
            seen.append(seed)
            if len(seen) == count:
                raise KeyboardInterrupt

        return on_cell

    for first, then in (("ray", "local"), ("local", "ray")):
        out = tmp_path / f"{first}-then-{then}"
        with pytest.raises(KeyboardInterrupt):
            run_study(apply, spec, session, out, on_cell=stop_after(2), executor=first)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and len(manifest["cells"]) == 2
        assert not (out / "metrics.json").exists()
        report = run_study(apply, spec, session, out, executor=then)
        assert report["reused_cells"] == 2, (first, then)
        assert {**report, "reused_cells": 0} == clean
        for name, blob in files(tmp_path / "clean").items():
            if name.endswith(
                (".png", "vfield-seed1.json", "vfield-seed2.json", "vfield-seed3.json", "vfield-seed5.json")
            ):
                assert (out / name).read_bytes() == blob, name
    assert cluster.is_initialized()


@needs_ray
def test_a_worker_with_other_versions_is_refused(tmp_path: Path, cluster, monkeypatch) -> None:
    # The driver believes it runs another torch: the workers' real versions then differ from it.
    real = executors.stack_versions
    monkeypatch.setattr(executors, "stack_versions", lambda session: {**real(session), "torch": "0.0-driver"})
    spec = write(tmp_path, {**APPLY, "seeds": [1]}, "spec.yaml")
    result = run("apply", spec, "--out", tmp_path / "o", "--executor", "ray")
    assert result.exit_code == 2, result.output
    assert "a Ray worker runs" in result.output and "torch 0.0-driver" in result.output
    assert "Install the same steer, torch, numpy and procgen on every node" in result.output
    assert not (tmp_path / "o" / "field-seed1.png").exists()  # nothing computed under the wrong versions is kept
