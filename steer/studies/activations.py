"""`steer activations`: store the policy's activations at chosen sites for every (maze, mouse square), with features.

Per seed (one cell) it writes `acts-seed{N}-{site}.npz` per site (array `x`, shape (rows, *site shape), float16
by default) and `features-seed{N}.csv` (one row per mouse square, in the same order: `steer.maze.features`). Each
cell is written to disk when it finishes and nothing is kept in memory across cells, so 1,000 mazes stream to
disk; `activations.json` lists the chunks (seed, rows, files) for `steer probe` and for notebooks.

    sites: [block2.res1.resadd_out, fc]   # default: block2.res1.resadd_out
    squares: all                          # or start: the start square only (one row per maze)
    dtype: float16                        # or float32
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steer.errors import SteerError, excerpt
from steer.io import atomic_write_bytes
from steer.maze.features import COLUMNS, FEATURES, feature_rows
from steer.maze.layout import Square
from steer.net.policy import obs_to_tensor
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table
from steer.run.options import Options, option
from steer.run.session import Session
from steer.run.spec_fields import choice_of
from steer.run.spec_values import parse_layers
from steer.run.specs import DEFAULT_LAYER, Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable

SQUARES = ("all", "start")
DTYPES = ("float16", "float32")


def _sites(value: Any, where: str) -> tuple[str, ...]:
    names = parse_layers(value, where)
    if not names:  # 'all' would store every intermediate: far too much disk for what a probe needs
        raise SteerError(f"{where}: list the hook names to store, e.g. [block2.res1.resadd_out, fc]; 'all' is refused.")
    return names


@dataclass(frozen=True, kw_only=True)
class ActivationsOptions(Options):
    sites: tuple[str, ...] = option(_sites, default=(DEFAULT_LAYER,), about="hook points to store")
    squares: str = option(choice_of(SQUARES), default="all", about="every open square, or the start alone")
    dtype: str = option(choice_of(DTYPES), default="float16")


def check(spec: Spec) -> None:
    if spec.layer is not None:  # a shared key this study would otherwise ignore silently
        raise SteerError("layer: `steer activations` stores the hook points listed under `sites:`; use sites: [...].")


def act_filename(seed: int, site: str) -> str:
    return f"acts-seed{seed}-{site}.npz"


def features_filename(seed: int) -> str:
    return f"features-seed{seed}.csv"


def npz_bytes(x: np.ndarray) -> bytes:
    """An uncompressed .npz holding `x`: compression costs more time than the disk it saves on float activations."""
    buf = io.BytesIO()
    np.savez(buf, x=x)
    return buf.getvalue()


def csv_bytes(rows: list[dict[str, float]]) -> bytes:
    """Feature rows as CSV (NaN written as an empty field), columns in `steer.maze.features.COLUMNS` order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if math.isnan(row[c]) else f"{row[c]:g}" for c in COLUMNS])
    return buf.getvalue().encode()


def read_features(path: Path) -> dict[str, np.ndarray]:
    """A features CSV back as one float64 array per column (NaN where the field is empty)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) if r[c] != "" else math.nan for r in rows]) for c in COLUMNS}


@dataclass(frozen=True)
class Plan:
    spec: Spec
    sites: tuple[str, ...]  # display names, in network order
    squares: str
    dtype: str
    layer: str  # provenance: the sites, joined

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        maze = session.target_maze(self.spec, seed)  # the level with the spec's target_edits, if any
        positions: list[Square]
        if self.squares == "start":
            positions = [maze.start_square]
        else:
            cheese = maze.cheese  # the mouse never stands on the cheese: the episode ends there
            positions = [sq for sq in maze.open_squares() if sq != cheese]
        obs = obs_to_tensor(session.renderer.observe_positions(maze, positions), session.device)
        policy = session.policy
        internal = [policy.resolve(s) for s in self.sites]
        last = max(internal, key=policy.site_index)
        parts: dict[str, list[np.ndarray]] = {s: [] for s in internal}
        with torch.inference_mode():
            for i in range(0, len(obs), self.spec.batch_size):
                values = policy.run({"input": obs[i : i + self.spec.batch_size]}, stop=last, keep=frozenset(internal))
                for s in internal:
                    parts[s].append(values[s].cpu().numpy().astype(self.dtype))
        files = []
        for name, s in zip(self.sites, internal, strict=True):
            x = np.concatenate(parts.pop(s))
            if not np.isfinite(x).all():
                raise SteerError(f"seed {seed}: the activations at {name} hold NaN or inf (float16 overflow?).")
            files.append(act_filename(seed, name))
            atomic_write_bytes(out / files[-1], npz_bytes(x))
        files.append(features_filename(seed))
        atomic_write_bytes(out / files[-1], csv_bytes(feature_rows(maze, seed, positions)))
        return "done", files, {"seed": seed, "rows": len(positions), "maze_dim": maze.maze_dim, "files": files}


def plan(spec: Spec, session: Session) -> Plan:
    policy = session.policy
    sites = spec.options.sites
    names = []
    for i, name in enumerate(sites):
        try:
            names.append(policy.hook_names[policy.site_index(name)])
        except SteerError:
            raise SteerError(
                f"sites[{i}]: {excerpt(name)} is not a hook point of this policy. Valid names: "
                f"{', '.join(policy.hook_names)}."
            ) from None
    if len(set(names)) != len(names):
        raise SteerError(f"sites: a hook point is listed twice ({', '.join(names)}).")
    names.sort(key=policy.site_index)  # network order: what `steer probe` charts against depth
    return Plan(spec, tuple(names), spec.options.squares, spec.options.dtype, ", ".join(names))


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    policy = session.policy
    return Report(
        {
            "sites": list(plan.sites),
            "shapes": {s: list(policy.activation_shape(s)) for s in plan.sites},
            "dtype": plan.dtype,
            "squares": plan.squares,
            "features": FEATURES,
            "rows": sum(c["rows"] for c in done),
            # The chunk manifest: one entry per maze, in seed order; each site's file holds `rows` rows whose
            # order is the features CSV's.
            "chunks": [
                {
                    "seed": c["seed"],
                    "rows": c["rows"],
                    "features": features_filename(c["seed"]),
                    "sites": {s: act_filename(c["seed"], s) for s in plan.sites},
                }
                for c in done
            ],
        }
    )


def summary(report: dict[str, Any]) -> list[str]:
    return [
        f"{len(report['chunks'])} mazes, {report['rows']} rows ({report['squares']} squares) at "
        f"{', '.join(report['sites'])}, stored as {report['dtype']}"
    ]


MAZES = Table(
    "mazes",
    "one row per maze recorded (each maze's squares and features are in its features-seed<N>.csv)",
    (SEED, MAZE_COLUMNS[0], Column("rows", "int", "squares", "the squares recorded (one row of activations each)")),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for c in f.done:
        yield {"seed": c["seed"], "maze_dim": c["maze_dim"], "rows": c["rows"]}


STUDY = Study(
    name="activations",
    help="Store activations at chosen sites for every (maze, mouse square), with a table of maze features.",
    options=ActivationsOptions,
    plan=plan,
    report=report,
    check=check,
    summary=summary,
    report_name="activations.json",
    tables=(StudyTable(MAZES, maze_rows),),
)
