"""Where a run's cells execute: in this process or local worker processes (`local`), or as Ray tasks (`ray`).

`steer.run.runner.run_cells` decides which cells still need computing and records each finished one; this module
only computes cells on a Ray cluster and hands each result back. The driver alone writes the run folder:
a task runs a chunk of seeds, each cell into a private temporary folder on its worker, and returns the files'
bytes; the driver writes them atomically into the run folder and records the cell exactly as the local path
does. So the journal, the manifest, resume and `--force` do not depend on the executor, and a run
interrupted on one executor resumes on the other.

The checkpoint travels as bytes through Ray's object store (put once per checkpoint and Ray session), not
as a path, so the nodes of a remote cluster need steer installed but not the checkpoint file; each worker
checks the bytes' sha256 and loads them weights-only (as `steer.net.checkpoints.load` does), once per worker
process. The plan (with its vectors) is put once per run. Workers run single-threaded torch, as the local
workers do, so the results are byte-identical to `--executor local`.

Ray is an optional extra: `import ray` happens here only, when `--executor ray` is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from steer.errors import SteerError, excerpt
from steer.io import atomic_write_bytes, inside
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.run.allocator import keep_freed_memory
from steer.run.session import Recipe, Session, provenance
from steer.run.study import CellResult, Plan, run_cell

EXECUTORS = ("local", "ray")
INSTALL = 'pip install -e ".[ray]"'
CHUNKS_PER_CPU = 4  # at least this many tasks per cluster CPU, so that the load balances at the end of a run
MAX_CHUNK = 8  # seeds per task at most: what a Ctrl-C or a lost worker loses, and the journal's lag behind
CONNECT_TIMEOUT_S = 5.0  # a head that does not answer a TCP connect within this is reported, not waited for

# Per Ray worker process (a worker is reused across tasks): sessions by checkpoint and mode, the latest plan.
_sessions: dict[tuple[str, str, str, bool], Session] = {}
_plan: dict[str, Plan] = {}
# On the driver: the checkpoint bytes' object-store reference per (Ray job, sha256), put once per session.
_checkpoint_refs: dict[tuple[str, str], Any] = {}
_versions: dict[str, str] = {}  # this process's, from `stack_versions`
_remote_chunk: Any = None  # `run_chunk` as a Ray remote function, made once per driver process

WireCell = tuple[int, str, list[tuple[str, bytes]], dict[str, Any]]  # seed, status, (name, bytes) per file, result
Reply = tuple[list[WireCell], str | None, dict[str, str]]  # a task's cells, the error that stopped it, its versions


def check_executor(executor: str, address: str | None) -> None:
    """Refuse an unknown executor, an address without Ray, a missing extra or an unreachable head, before any
    checkpoint is loaded or any folder is written."""
    if executor not in EXECUTORS:
        raise SteerError(f"--executor: {excerpt(executor)} is not an executor; use local (the default) or ray.")
    if address is not None and executor != "ray":
        raise SteerError(
            f"--address: {excerpt(address)} names a Ray cluster, which only --executor ray uses. Add --executor ray, "
            "or drop --address."
        )
    if executor == "ray":
        ray = import_ray()
        if address is not None and not ray.is_initialized():
            _check_reachable(address)


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise SteerError(
            f"--executor: ray needs the Ray package, which is not installed here. Install steer's ray extra with "
            f"{INSTALL} (from the steer checkout), or use --executor local."
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """A quick TCP connect to the head: Ray itself retries an unreachable address for minutes, logging as it goes."""
    if address == "auto":  # Ray finds a cluster started on this machine, or says at once that there is none
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SteerError(
            f"--address: {excerpt(address)} is not HOST:PORT. Give the address `ray start --head` printed, e.g. "
            "--address 10.0.0.5:6379 (or ray://10.0.0.5:10001 for Ray Client, or auto for a cluster on this "
            "machine)."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise SteerError(
            f"--address: nothing answers at {excerpt(address)} ({e.strerror or e}, within {CONNECT_TIMEOUT_S:g} s). "
            f"Start a Ray head there (ray start --head --port {port}) and pass the address it prints, or leave "
            "--address out to start a local Ray instance."
        ) from None


@contextlib.contextmanager
def started(executor: str, address: str | None) -> Iterator[None]:
    """The executor ready for a run or a whole batch: for Ray, connected (started when there is no cluster)
    and, when steer connected it, shut down at the end. `local` needs nothing."""
    if executor != "ray":
        yield
        return
    ray = import_ray()
    if ray.is_initialized():  # a batch, a notebook or a test already connected: use it and leave it running
        yield
        return
    if address is not None:
        _check_reachable(address)
    try:
        # "local": a new instance of our own, even where RAY_ADDRESS or a (perhaps stale) `ray start` on this machine
        # would make Ray connect there; that cluster is `--address auto`.
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as e:
        raise SteerError(
            f"--address: could not connect to a Ray cluster at {excerpt(address)} ({excerpt(str(e), 160)}). Start "
            "one with `ray start --head` and pass the address it prints, or leave --address out. A cluster with "
            "token authentication (on by default for `ray start` since Ray 2.59) also needs RAY_AUTH_MODE=token "
            "and its token (~/.ray/auth_token or RAY_AUTH_TOKEN) in steer's environment; on the head node, "
            "--address auto finds both."
        ) from None
    except RuntimeError as e:  # e.g. a cluster of another Ray or Python version: Ray's message says which
        raise SteerError(
            f"--executor ray: Ray could not start or connect ({excerpt(str(e), 240)}). Fix what it names, or use "
            "--executor local."
        ) from None
    try:
        yield
    finally:
        _checkpoint_refs.clear()
        ray.shutdown()


def chunk_size(cells: int, cpus: int) -> int:
    """Seeds per task: CHUNKS_PER_CPU tasks per CPU or more, at most MAX_CHUNK seeds each.

    A task costs a few milliseconds to schedule and return on a warm worker (`make bench` measures it) while
    a cell takes tens to hundreds, so chunks of up to 8 keep that overhead near 1% without leaving one
    worker busy with a long last chunk while the others idle.
    """
    return min(MAX_CHUNK, max(1, math.ceil(cells / (max(1, cpus) * CHUNKS_PER_CPU))))


def ray_cells(plan: Plan, session: Session, seeds: tuple[int, ...], out: Path) -> Iterator[tuple[int, CellResult]]:
    """Compute `seeds` on the connected Ray cluster; yield each cell as (seed, result) once its files are in `out`.

    Chunks come back in the order they finish. Close the generator (the runner does, also on Ctrl-C) to cancel
    the chunks still pending.
    """
    ray = import_ray()
    remote = _remote(ray)
    here = stack_versions(session)
    checkpoint = _checkpoint_ref(ray, session)
    plan_ref = ray.put(plan)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    size = chunk_size(len(seeds), cpus)
    # The references go inside lists so that Ray does not fetch them for every task: a worker gets the
    # checkpoint bytes only when it has no session for them yet, and the plan only when it is a new plan.
    pending = [
        remote.remote(session.recipe(), [checkpoint], [plan_ref], seeds[i : i + size])
        for i in range(0, len(seeds), size)
    ]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                cells, error, there = ray.get(ready[0])
            except ray.exceptions.RayTaskError:
                raise  # a bug in a cell: its traceback, as the local executor shows it
            except ray.exceptions.RayError as e:  # a worker or node lost past Ray's retries, an object lost
                raise SteerError(
                    f"--executor ray: the cluster lost a task ({type(e).__name__}: {excerpt(str(e), 200)}). The "
                    "cells finished before it are kept; run the same command again to resume."
                ) from None
            # Another torch or steer on a node would compute other numbers under this run's name.
            if there and there != here:
                raise SteerError(
                    f"--executor ray: a Ray worker runs {versions_text(there)}, this process {versions_text(here)}. "
                    "Install the same steer, torch, numpy and procgen on every node of the cluster."
                )
            for seed, status, files, result in cells:
                for name, blob in files:
                    _write(out, name, blob, seed)
                yield seed, (status, [name for name, _ in files], result)
            if error is not None:
                raise SteerError(error)
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):  # a task that already ended cannot be cancelled
                ray.cancel(ref)


def stack_versions(session: Session) -> dict[str, str]:
    """The versions that decide a cell's numbers, as provenance records them (Python's is Ray's own concern);
    read once per process."""
    if not _versions:
        _versions.update({k: str(v) for k, v in provenance(session, "")["versions"].items() if k != "python"})
    return dict(_versions)


def versions_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def _write(out: Path, name: str, blob: bytes, seed: int) -> None:
    target = inside(out, name)
    if target is None:  # a cell names its files; one leading out of the folder is a bug, never written
        raise SteerError(f"seed {seed}: the cell returned the file name {excerpt(name)}, which leads out of {out}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, blob)


def _remote(ray: ModuleType) -> Any:
    global _remote_chunk
    if _remote_chunk is None:
        _remote_chunk = ray.remote(num_cpus=1)(run_chunk)  # a crashed worker's chunk is retried: cells are pure
    return _remote_chunk


def _checkpoint_ref(ray: ModuleType, session: Session) -> Any:
    ck = session.checkpoint
    key = (ray.get_runtime_context().get_job_id(), ck.sha256)
    if key not in _checkpoint_refs:
        try:
            blob = Path(ck.path).read_bytes()
        except OSError as e:
            raise SteerError(f"checkpoint: could not read {excerpt(str(ck.path))} again ({e.strerror or e}).") from None
        if hashlib.sha256(blob).hexdigest() != ck.sha256:  # the file changed under the run: cells would mix networks
            raise SteerError(f"checkpoint: {excerpt(str(ck.path))} changed while the run was going. Run again.")
        _checkpoint_refs[key] = ray.put(blob)
    return _checkpoint_refs[key]


# -- on a Ray worker ---------------------------------------------------------------------------------------


def run_chunk(
    recipe: Recipe, checkpoint: list[Any], plan_ref: list[Any], seeds: tuple[int, ...]
) -> tuple[list[WireCell], str | None]:
    """A Ray task: each seed's cell, its files read back as bytes. Stops at the first SteerError (a cell that
    cannot be computed) and returns the cells before it with the message, so the driver records those first."""
    ray = import_ray()
    torch.set_num_threads(1)  # as the local workers: the processes share the cores, and the bits do not change
    try:
        session = _worker_session(ray, recipe, checkpoint[0])
    except SteerError as e:
        return [], str(e), {}
    versions = stack_versions(session)
    key = plan_ref[0].hex()
    if key not in _plan:
        _plan.clear()  # one plan at a time: a batch's runs come one after another
        _plan[key] = ray.get(plan_ref[0])
    plan = _plan[key]
    cells: list[WireCell] = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="steer-cell-") as tmp:
            folder = Path(tmp)
            try:
                status, names, result = run_cell(plan, session, seed, folder)
            except SteerError as e:
                return cells, str(e), versions
            files = []
            for name in names:
                path = inside(folder, name)
                if path is None or not path.is_file():
                    missing = f"seed {seed}: the cell listed {excerpt(name)} but wrote no such file in its folder."
                    return cells, missing, versions
                files.append((name, path.read_bytes()))
        cells.append((seed, status, files, result))
    return cells, None, versions


def _worker_session(ray: ModuleType, recipe: Recipe, checkpoint: Any) -> Session:
    """This worker's session for the recipe, built from the checkpoint's bytes the first time."""
    path, mode, source, device, allow_pickle, sha256 = recipe
    key = (sha256, mode, device, allow_pickle)
    if key not in _sessions:
        blob: bytes = ray.get(checkpoint)
        got = hashlib.sha256(blob).hexdigest()
        if got != sha256:
            raise SteerError(
                f"checkpoint: the bytes that reached a Ray worker have sha256 {got[:12]}…, not {sha256[:12]}…."
            )
        keep_freed_memory()
        # Loaded from a file of the same name, so that a checkpoint not in the registry gets the same name (its
        # figures' titles show it) as on the driver; the path recorded is the driver's.
        with tempfile.TemporaryDirectory(prefix="steer-checkpoint-") as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(blob)
            ck = checkpoints.load(local, device=device, allow_pickle=allow_pickle)
        ck = dataclasses.replace(ck, path=Path(path))
        # One rendering thread, as the local workers: each worker holds one CPU of the cluster.
        _sessions[key] = Session(ck, mode, source, MazeRenderer(mode, threads=1), device, allow_pickle)
    return _sessions[key]
