"""The state behind `steer explore`: the loaded checkpoint, its caches, and the computation of one view.

`Explorer` turns a request's parameters, those of an `apply` spec for one seed

    {"seed": 0, "distribution_mode": "easy", "layer": "block2.res1.resadd_out", "coeff": -1,
     "vector": {"kind": "cheese", "source_seed": 5, "mouse": [6, 6]} | {"file": "outputs/vecs/v.safetensors"},
     "target_edits": [{"wall": [3, 4]}, {"open": [5, 5]}, {"cheese": [7, 7]}, "remove_cheese"]}

into that spec, checked by the same code as a spec file (`STUDIES["apply"].parse`), so a bad value gets the
message a spec would; and computes the view the way `steer apply` does (`plan_vector`, `for_target`,
`vector_fields`), so the saved spec (`spec_yaml`) gives YAML that `steer apply` reproduces. Vector files are
read only under the working folder or the `--vectors` folders (`Explorer.confine`).

Speed: per maze state the rendered observations and the original field are cached (`FieldInputs` memoises
the network prefix at the injection layer), and vectors are cached per (maze, vector, layer), so moving the
coefficient only runs the network suffix on the cached prefix.

It knows nothing of HTTP: steer/explore/app.py wraps it in the web app, and tests and the benchmark drive it
directly.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from steer.analysis.chain import Chain
from steer.analysis.metrics import BEHAVIOUR_METRICS, FIELD_METRICS, METRICS
from steer.errors import SteerError, excerpt
from steer.explore.caches import LRU, EpisodeCache, MazeEntry
from steer.explore.retarget_view import RetargetViews
from steer.maze.env import MazeRenderer, check_seed
from steer.maze.layout import WALL, Maze
from steer.net import checkpoints
from steer.net.checkpoints import Checkpoint
from steer.net.vector_files import SUFFIXES as VECTOR_SUFFIXES
from steer.net.vectors import KINDS, SteeringVector, apply_edits
from steer.net.vfield import FieldInputs, vector_fields
from steer.run.session import Session
from steer.run.specs import DEFAULT_LAYER, Spec
from steer.run.vector_plan import plan_vector
from steer.studies import STUDIES

PARAMETERS = ("seed", "distribution_mode", "layer", "coeff", "vector", "target_edits")
MAX_VECTOR_FILES = 200  # listed in the page's file picker


def _rows(grid: Any) -> list[str]:
    """A grid as text rows from row 0 (the bottom) up: '#' wall, '.' open. Compact for JSON, easy to index."""
    return ["".join("#" if v == WALL else "." for v in row) for row in grid.tolist()]


def _listed(square: Any) -> list[int] | None:
    return [int(square[0]), int(square[1])] if square is not None else None


class Explorer(RetargetViews):
    """One loaded checkpoint and the caches behind the web app; usable without a server (the tests do)."""

    def __init__(self, checkpoint: Checkpoint, vector_dirs: Sequence[Path] = (), device: str = "cpu") -> None:
        self.checkpoint = checkpoint
        self.device = device
        roots = [Path.cwd(), *vector_dirs]
        self.roots = tuple(dict.fromkeys(r.resolve() for r in roots))
        self._sessions: dict[str, Session] = {}
        self._levels: LRU[tuple[str, int], Maze] = LRU(64)
        self._mazes: LRU[tuple[str, bytes], MazeEntry] = LRU(4)  # a 25x25 maze with its prefix is ~60 MB
        self._episodes = EpisodeCache()
        self._retarget: LRU[tuple[str, bytes, str], tuple[FieldInputs, Chain]] = LRU(2)  # both facings of a maze
        self._vectors: LRU[str, SteeringVector] = LRU(32)
        # procgen environments, the prefix memo and the caches are not thread-safe; views are quick, so one at
        # a time is fine (the page sends at most one request at a time anyway).
        self.lock = threading.Lock()

    @classmethod
    def open(
        cls,
        checkpoint: str | None = None,
        device: str = "cpu",
        vector_dirs: Sequence[Path] = (),
        allow_pickle: bool = False,
    ) -> Explorer:
        """Load the checkpoint (a name or path; None: STEER_CHECKPOINT or the default) and check `vector_dirs`."""
        for d in vector_dirs:
            if not Path(d).is_dir():
                raise SteerError(
                    f"--vectors: {excerpt(str(d), 160)} is not a folder. Give the folder your vector "
                    "files are in (the explorer reads vector files only under it and the working folder)."
                )
        if device != "cpu" and not (device.startswith("cuda") and torch.cuda.is_available()):
            raise SteerError(f"--device: {device!r} is not available here; use 'cpu'.")
        return cls(checkpoints.load(checkpoint, device=device, allow_pickle=allow_pickle), vector_dirs, device)

    # -- parameters ----------------------------------------------------------------------------------------

    @property
    def checkpoint_ref(self) -> str:
        """How a saved spec names the checkpoint: its known name, else its path."""
        ck = self.checkpoint
        return ck.name if ck.name in checkpoints.KNOWN else str(ck.path)

    @property
    def layers(self) -> list[str]:
        """Hook names a vector can be added at (every one but the value head)."""
        return [n for n in self.checkpoint.policy.hook_names if n != "fc_value"]

    def confine(self, name: Any) -> Path:
        """A vector file the explorer may read: under the working folder or a `--vectors` folder, else an error.

        The name comes from a web request, so `..`, absolute paths and symlinks leading elsewhere are resolved
        before the check: a page must not make the server read (or probe for) files outside those folders.
        """
        if not isinstance(name, str) or not name.strip() or "\0" in name:
            raise SteerError(
                f"vector.file: expected the path of a vector file (.safetensors or .pt), got {excerpt(name)}."
            )
        given = Path(name.strip())
        where = " or ".join(repr(str(r)) for r in self.roots)
        candidates = [given] if given.is_absolute() else [root / given for root in self.roots]
        inside_a_root = False
        for candidate in candidates:
            try:
                path = candidate.resolve()  # `..` and symlinks resolved before the check, not after
            except (OSError, RuntimeError):  # a symlink loop, a name the file system refuses
                continue
            if any(path != root and path.is_relative_to(root) for root in self.roots):
                inside_a_root = True
                if path.is_file():
                    return path
        if not inside_a_root:
            raise SteerError(
                f"vector.file: {excerpt(name, 160)} is outside the folders the explorer reads vector files from "
                f"({where}). Copy it under one of them, or start `steer explore --vectors DIR` with its folder."
            )
        raise SteerError(
            f"vector.file: {excerpt(name, 160)} does not exist under {where}. Make one with "
            "`steer compute-vector SPEC.yaml`."
        )

    def parse(self, data: Any) -> tuple[Spec, dict[str, Any]]:
        """A request's parameters as a checked `apply` spec for one seed, and that spec as YAML-ready data."""
        if not isinstance(data, dict):
            raise SteerError(
                f"request: expected a JSON object of parameters ({', '.join(PARAMETERS)}), got {excerpt(data)}."
            )
        for key in data:
            if key not in PARAMETERS:
                raise SteerError(f"{excerpt(key, 40)}: unknown parameter. Valid parameters: {', '.join(PARAMETERS)}.")
        seed = check_seed(data.get("seed"), "seed")
        # Checked here, not left to the spec parser: its message about a missing key points at spec files.
        if data.get("coeff") is None:
            raise SteerError("coeff: missing; set the coefficient to multiply the vector by, e.g. -1 or 2.5.")
        if data.get("vector") is None:
            raise SteerError(
                'vector: missing; give {"kind": "cheese"} or {"kind": "top_right"} (optionally with '
                '"source_seed" and "mouse"), or {"file": PATH} for a saved vector.'
            )
        vector = data.get("vector")
        if isinstance(vector, dict) and "file" in vector:
            vector = {**vector, "file": self._spec_path(self.confine(vector["file"]))}
        raw: dict[str, Any] = {
            "name": f"explore-seed{seed}",
            "checkpoint": self.checkpoint_ref,
            "distribution_mode": data.get("distribution_mode") or self.checkpoint.mode,
        }
        if data.get("layer") is not None:
            raw["layer"] = data["layer"]
        elif not (isinstance(vector, dict) and "file" in vector):
            raw["layer"] = DEFAULT_LAYER  # written out, so the saved spec says where the vector went
        raw["seeds"] = [seed]
        if data.get("target_edits"):
            raw["target_edits"] = data["target_edits"]
        raw["coeff"] = data.get("coeff")
        raw["vector"] = vector
        spec = STUDIES["apply"].parse(raw)  # the checks a spec file gets, with the same messages
        return spec, raw

    def _spec_path(self, path: Path) -> str:
        """A confined vector file as a saved spec names it: relative to the working folder when under it."""
        cwd = Path.cwd().resolve()
        return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)

    # -- computing a view ----------------------------------------------------------------------------------

    def session(self, mode: str) -> Session:
        if mode not in self._sessions:
            self._sessions[mode] = Session(self.checkpoint, mode, "spec", MazeRenderer(mode), self.device)
        return self._sessions[mode]

    def _level(self, session: Session, seed: int) -> Maze:
        key = (session.mode, seed)
        return self._levels.get(key) or self._levels.put(key, session.renderer.level(seed))

    @staticmethod
    def _edited(level: Maze, spec: Spec) -> Maze:
        """`session.target_maze(spec, seed)` on the cached level, an edit that cannot apply named by its index."""
        maze = level
        for i, edit in enumerate(spec.target_edits):
            try:
                maze = apply_edits(maze, [edit])
            except SteerError as e:
                op, square = edit
                shown = op if square is None else f"{op} {list(square)}"
                raise SteerError(f"target_edits[{i}] ({shown}): {e}") from None
        return maze

    def _vector(self, session: Session, spec: Spec, seed: int) -> tuple[SteeringVector, bool]:
        """The vector `steer apply` would add on this target, cached by everything it depends on but coeff."""
        identity = spec.identity(keep_seeds=True)
        identity.pop("coeff", None)
        assert spec.options.vector is not None
        if spec.options.vector.file is not None:  # a file edited while the explorer runs is a new vector
            stat = Path(spec.options.vector.file).stat()
            identity["file_state"] = [stat.st_mtime_ns, stat.st_size]
        key = json.dumps([session.mode, identity], sort_keys=True, default=str)
        vec = self._vectors.get(key)
        if vec is not None:
            return vec, True
        assert spec.options.coeff is not None
        plan = plan_vector(session, spec, spec.options.vector, spec.options.coeff, "vector")
        return self._vectors.put(key, plan.for_target(session, spec, seed)), False

    def view(self, data: Any) -> dict[str, Any]:
        """Everything the page draws for one request: maze, arrows, metrics; a SteerError for bad parameters."""
        spec, raw = self.parse(data)
        start = time.perf_counter()
        with self.lock:
            session = self.session(raw["distribution_mode"])
            seed = spec.seeds[0]
            level = self._level(session, seed)
            target = self._edited(level, spec)
            vec, vec_cached = self._vector(session, spec, seed)
            key = (session.mode, target.to_bytes())
            entry = self._mazes.get(key)
            maze_cached = entry is not None
            if entry is None:
                inputs = FieldInputs.render(session.renderer, target, session.device)
                (original,) = vector_fields(session.policy, inputs, vec.layer, [None], spec.batch_size)
                entry = self._mazes.put(key, MazeEntry.compute(inputs, original))
            assert spec.options.coeff is not None
            (patched,) = vector_fields(
                session.policy, entry.inputs, vec.layer, [spec.options.coeff * vec.tensor], spec.batch_size
            )
            episode = self._episodes.statistics(
                session, target, vec.layer, spec.options.coeff * vec.tensor, spec.batch_size
            )
        metrics = entry.metrics(patched)
        mouse = vec.meta.get("mouse")
        return {
            "request": {k: raw[k] for k in ("distribution_mode", "coeff", "vector") if k in raw}
            | {"seed": seed, "layer": vec.layer, "target_edits": raw.get("target_edits", [])},
            "layer": vec.layer,
            "vector": {
                "kind": vec.kind,
                "layer": vec.layer,
                "norm": float(vec.tensor.norm()),
                "source_seed": vec.meta.get("source_seed"),
                "file": raw["vector"].get("file"),
                "mouse": mouse if isinstance(mouse, list) else None,
            },
            "maze": {
                "world_dim": target.world_dim,
                "maze_dim": target.maze_dim,
                "walls": _rows(target.grid),
                "level_walls": _rows(level.grid),
                "cheese": _listed(target.cheese),
                "start": _listed(target.start_square),
                "top_right": _listed(target.top_right_square),
                "decision_square": metrics["decision_square"],
            },
            "positions": [list(p) for p in entry.original.positions],
            "original": {"arrows": entry.original.arrows.tolist()},
            "patched": {"arrows": patched.arrows.tolist()},
            "metrics": {name: metrics[name] for name in FIELD_METRICS},
            "episode": episode,
            "timing": {
                "compute_ms": round(1000 * (time.perf_counter() - start), 1),
                "maze_cached": maze_cached,
                "vector_cached": vec_cached,
            },
        }

    # -- retarget mode ----------------------------------------------------------------------------------------

    def spec_yaml(self, data: Any) -> tuple[str, str]:
        """(file name, YAML) of the `steer apply` spec that reproduces this view, its numbers in a comment."""
        view = self.view(data)
        _, raw = self.parse(data)
        m = view["metrics"]

        def pair(name: str) -> str:
            v = m[name]
            return " -> ".join("n/a" if v[s] is None else f"{v[s]:.4f}" for s in ("original", "patched"))

        head = (
            "# Saved by `steer explore`. `steer apply THIS.yaml` reproduces the view; when it was saved:\n"
            f"#   {METRICS['p_cheese_ds'].label}: {pair('p_cheese_ds')}\n"
            f"#   {METRICS['p_top_right_ds'].label}: {pair('p_top_right_ds')}\n"
            f"#   {METRICS['mean_tv'].label}: {m['mean_tv']:.4f}\n"
        )
        body = yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, allow_unicode=True)
        return f"{raw['name']}.yaml", head + body

    def vector_files(self) -> list[str]:
        """Vector files (.safetensors, .pt) under the allowed folders, for the page's picker: a bounded, shallow
        walk that skips hidden folders (.venv, .git hold many files and no vectors)."""
        found: dict[str, None] = {}
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                depth = len(Path(folder).relative_to(root).parts)
                dirs[:] = [] if depth >= 3 else sorted(d for d in dirs if not d.startswith((".", "__")))
                for name in sorted(files):
                    if name.endswith(VECTOR_SUFFIXES):
                        found[self._spec_path((Path(folder) / name).resolve())] = None
                        if len(found) >= MAX_VECTOR_FILES:
                            return list(found)
        return list(found)

    def page_config(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "checkpoint": {"name": ck.name, "sha256": ck.sha256, "mode": ck.mode},
            "modes": ["easy", "hard"],
            "layers": self.layers,
            "default_layer": DEFAULT_LAYER,
            "kinds": [k for k in KINDS if k != "custom"],
            "metrics": [{"name": m.name, "label": m.label, "paired": m.paired} for m in FIELD_METRICS.values()],
            # Labels for episode_statistics' numbers, once it returns them (steer.analysis.metrics' behaviour metrics).
            "episode_labels": {m.name: m.label for m in BEHAVIOUR_METRICS.values()},
            "retarget_channels": ", ".join(map(str, self.cheese_channels())),
        }
