"""A session: a loaded checkpoint, the environment mode experiments run in, and a renderer for that mode.

session = open_session(load_spec("configs/demo.yaml"))
session.policy, session.renderer, session.mode
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steer.errors import SteerError, excerpt
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze
from steer.net import checkpoints
from steer.net.policy import ImpalaPolicy, display_name
from steer.net.vectors import apply_edits
from steer.run.allocator import keep_freed_memory
from steer.run.cores import machine
from steer.run.specs import Spec
from steer.version import __version__

Recipe = tuple[str, str, str, str, bool, str]  # path, mode, mode source, device, allow_pickle, sha256


@dataclass
class Session:
    """A loaded checkpoint, the environment mode experiments run in, and a renderer for that mode."""

    checkpoint: checkpoints.Checkpoint
    mode: str
    mode_source: str  # "spec" or "checkpoint": where the mode came from
    renderer: MazeRenderer
    device: str = "cpu"
    allow_pickle: bool = False  # the checkpoint was loaded with full unpickling, by the user's explicit choice

    @property
    def policy(self) -> ImpalaPolicy:
        return self.checkpoint.policy

    @property
    def title(self) -> str:
        """How figures name the run: checkpoint and mode."""
        return f"{self.checkpoint.name} ({self.mode})"

    def recipe(self) -> Recipe:
        """What a worker process needs to rebuild this session (checkpoints and envs do not pickle)."""
        return (
            str(Path(self.checkpoint.path).resolve()),  # workers may outlive a change of directory
            self.mode,
            self.mode_source,
            self.device,
            self.allow_pickle,
            self.checkpoint.sha256,
        )

    @classmethod
    def from_recipe(cls, recipe: Recipe, render_threads: int | None = None) -> Session:
        path, mode, source, device, allow_pickle, sha256 = recipe
        keep_freed_memory()
        ck = checkpoints.load(path, device=device, allow_pickle=allow_pickle)
        if ck.sha256 != sha256:  # the file changed under the run: its cells would mix two networks
            raise SteerError(
                f"checkpoint: {path!r} changed while the run was going (sha256 {ck.sha256[:12]}…, "
                f"was {sha256[:12]}…). Run again."
            )
        return cls(ck, mode, source, MazeRenderer(mode, render_threads), device, allow_pickle)

    def target_maze(self, spec: Spec, seed: int) -> Maze:
        """The maze a spec means by `seed`: the generated level with the spec's `target_edits`."""
        return apply_edits(self.renderer.level(seed), spec.target_edits)


def resolve_layer(policy: ImpalaPolicy, name: str, where: str) -> str:
    """The display name of a hook point a vector can be added at, or an error naming the spec field."""
    try:
        site = policy.resolve(name)
    except SteerError:
        raise SteerError(
            f"{where}: {excerpt(name)} is not a hook point of this policy. Valid names: {', '.join(policy.hook_names)}."
        ) from None
    if site == "fc_value":
        raise SteerError(
            f"{where}: {excerpt(name)} is the value head; adding a vector there cannot change the actions. Use a layer "
            "before it, e.g. block2.res1.resadd_out or embedder.fc."
        )
    return display_name(site)


def open_session(spec: Spec, checkpoint: str | None = None, device: str = "cpu", allow_pickle: bool = False) -> Session:
    """Load the checkpoint (CLI value, else the spec's, else STEER_CHECKPOINT/default) and check the layer.

    `allow_pickle` lets a legacy checkpoint that only full unpickling reads load; that runs code from the file,
    so it is for files the user trusts (`--allow-pickle-checkpoint`).
    """
    if device != "cpu" and not (device.startswith("cuda") and torch.cuda.is_available()):
        raise SteerError(f"--device: {device!r} is not available here; use 'cpu'.")
    keep_freed_memory()
    ck = checkpoints.load(checkpoint or spec.checkpoint, device=device, allow_pickle=allow_pickle)
    if spec.layer is not None:
        resolve_layer(ck.policy, spec.layer, "layer")
    if spec.distribution_mode:
        mode, source = spec.distribution_mode, "spec"
    else:
        mode, source = ck.mode, "checkpoint"
    return Session(ck, mode, source, MazeRenderer(mode), device, allow_pickle)


def provenance(session: Session, layer: str) -> dict[str, Any]:
    """What produced a run's numbers: checkpoint (with sha256), mode, layer and versions."""
    return {
        "checkpoint": session.checkpoint.provenance(),
        "distribution_mode": session.mode,
        "distribution_mode_source": session.mode_source,
        "layer": layer,
        # the driver's CPU and kernels: numbers agree across machines only within docs/reproducibility.md's tolerance
        "machine": {
            **{k: v for k, v in machine().items() if k != "cores"},
            # which way the network ran: bit-identical either way (steer.net.compiled), named for the record
            "network": "compiled" if session.policy.fused_units else "eager",
        },
        "versions": {
            "steer": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "procgen": procgen_version(),
        },
    }


def procgen_version() -> str:
    for dist in ("procgen-mirror", "procgen"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "unknown"
