"""One way every study resolves a vector spec: a saved file, a fixed source seed, or each target's own pair.

A plan is made before the run folder is opened (so a bad file or an unbuildable source seed leaves no
folder behind) and then gives the vector for each target maze:

    plan = plan_vector(session, spec, spec.options.vector, coeff=-1, where="vector")
    vec = plan.for_target(session, spec, seed)      # the file's / source seed's vector, or seed's own
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

from steer.errors import SteerError, excerpt
from steer.maze.layout import Maze
from steer.net.checkpoints import sha256_of
from steer.net.dictionary_files import read_dictionary
from steer.net.feature_vectors import KIND
from steer.net.hooks import check_shape
from steer.net.vectors import PairSpec, SteeringVector, compute_vector
from steer.run.feature_plan import FeaturePlan, first_maze, plan_feature
from steer.run.session import Session, resolve_layer
from steer.run.spec_values import VectorSpec
from steer.run.specs import DEFAULT_LAYER, Spec


def build_vector(
    session: Session, spec: Spec, seed: int, pair: PairSpec, layer: str, where: str = "vector"
) -> SteeringVector:
    """The vector of `pair` on `seed`'s maze (with the spec's target edits) at `layer`."""
    meta = {
        "source_seed": seed,
        # JSON's own types (lists, not tuples), so the file's metadata reads back equal to this
        "target_edits": [[op, sq and list(sq)] for op, sq in spec.target_edits],
        "checkpoint_sha256": session.checkpoint.sha256,
        "checkpoint": session.checkpoint.name,
    }
    return compute_vector(session.policy, session.renderer, session.target_maze(spec, seed), pair, layer, meta, where)


def mean_vector(
    session: Session, spec: Spec, seeds: tuple[int, ...], pair: PairSpec, layer: str, where: str = "vector"
) -> SteeringVector:
    """The mean of `pair`'s vectors over `seeds`' mazes; a seed whose pair cannot be built is skipped (and listed).

    Every maze of one mode renders the same 64x64 observation, so the vectors share one shape and average.
    """
    built: list[SteeringVector] = []
    skipped: dict[int, str] = {}
    for seed in seeds:
        try:
            built.append(build_vector(session, spec, seed, pair, layer))
        except SteerError as e:
            skipped[seed] = str(e)
    if not built:
        first, reason = next(iter(skipped.items()))
        raise SteerError(
            f"{where}.source_seeds: none of the {len(seeds)} seeds gives a {pair.kind} vector (seed {first}: "
            f"{excerpt(reason, 200)}). Choose seeds whose mazes can build the pair."
        )
    # Per-maze keys (the mouse square of each pair) would describe only the first maze; they are dropped.
    meta = {k: v for k, v in built[0].meta.items() if k not in ("mouse", "mouse_a", "mouse_b")}
    meta.update(
        source_seed=None,
        source_seeds=[v.meta["source_seed"] for v in built],
        skipped_source_seeds=list(skipped),
        skipped_reasons={str(k): excerpt(r, 200) for k, r in skipped.items()},
    )
    tensor = torch.stack([v.tensor for v in built]).mean(0)
    return SteeringVector(layer=built[0].layer, tensor=tensor, kind=pair.kind, meta=meta)


def _check_origin(session: Session, vec: SteeringVector, path: Path, where: str, allow_other: bool) -> None:
    """A vector made with another checkpoint or mode is refused unless the spec allows it."""
    if allow_other:
        return
    sha, mode = vec.meta.get("checkpoint_sha256"), vec.meta.get("distribution_mode")
    if sha is not None and sha != session.checkpoint.sha256:
        raise SteerError(
            f"{where}.file: {excerpt(str(path), 160)} was computed with checkpoint "
            f"{excerpt(str(vec.meta.get('checkpoint')), 60)} "
            f"(sha256 {str(sha)[:12]}…), not this run's {session.checkpoint.name!r} (sha256 "
            f"{session.checkpoint.sha256[:12]}…). Recompute the vector with this checkpoint, or set "
            "`allow_other_checkpoint: true` in the spec to apply it anyway (the mismatch is then recorded)."
        )
    if mode is not None and mode != session.mode:
        raise SteerError(
            f"{where}.file: {excerpt(str(path), 160)} was computed in {str(mode)[:10]!r} mode, but this run is in "
            f"{session.mode!r} mode. Recompute the vector in {session.mode!r} mode, or set "
            "`allow_other_checkpoint: true` in the spec to apply it anyway (the mismatch is then recorded)."
        )


def vector_specs(value: Any) -> Iterator[VectorSpec]:
    """Every vector spec in a study's options (its `vector`, each of its `vectors`' ...), wherever it sits."""
    if isinstance(value, VectorSpec):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from vector_specs(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from vector_specs(v)


def vector_inputs(session: Session, spec: Spec) -> list[dict[str, Any]]:
    """The vector files a spec reads, with their sha256 and where they came from (for provenance and resume)."""
    files = [v.file for v in vector_specs(spec.options) if v.file is not None]
    out = []
    for path in dict.fromkeys(files):
        vec = SteeringVector.load(path)
        sha, mode = vec.meta.get("checkpoint_sha256"), vec.meta.get("distribution_mode")
        out.append(
            {
                "path": str(path),
                "sha256": sha256_of(Path(path)),
                "checkpoint_sha256": sha,
                "distribution_mode": mode,
                "matches_session": sha in (None, session.checkpoint.sha256) and mode in (None, session.mode),
            }
        )
    for path in dict.fromkeys(v.feature.file for v in vector_specs(spec.options) if v.feature is not None):
        sha = read_dictionary(path, "vector.feature.file").meta.get("checkpoint_sha256")
        out.append(
            {
                "path": str(path),
                "sha256": sha256_of(Path(path)),
                "checkpoint_sha256": sha,
                "distribution_mode": None,
                "matches_session": sha == session.checkpoint.sha256,
            }
        )
    return out


def load_vector_file(
    session: Session, path: Path, layer: str | None, where: str, layer_field: str, allow_other: bool = False
) -> SteeringVector:
    """A saved vector, checked against this policy; `layer`, when given, must be the file's layer.

    `layer_field` names the spec field the explicit layer came from (`layer`, `vectors[1].layer`).
    """
    try:
        vec = SteeringVector.load(path)
    except SteerError as e:
        raise SteerError(str(e).replace("vector.file:", f"{where}.file:", 1)) from None
    _check_origin(session, vec, path, where, allow_other)
    file_layer = resolve_layer(session.policy, vec.layer, f"{where}.file ({excerpt(str(path), 160)})")
    if layer is not None and resolve_layer(session.policy, layer, layer_field) != file_layer:
        raise SteerError(
            f"{layer_field}: {layer!r} is not the layer the vector file {excerpt(str(path), 160)} was computed at "
            f"({file_layer!r}). Drop `{layer_field}` or recompute the vector at that layer."
        )
    check_shape(session.policy, file_layer, vec.tensor, where=f"{where}.file")
    vec.layer = file_layer
    return vec


@dataclass(frozen=True)
class VectorPlan:
    """One vector of a study: fixed (a file or a source seed) or built from each target maze's own pair."""

    where: str  # the spec path, for messages: "vector", "vectors[1]"
    kind: str
    layer: str  # display name
    coeff: float
    label: str
    pair: PairSpec | None = None
    fixed: SteeringVector | None = None
    file: Path | None = None
    feature: FeaturePlan | None = None  # a dictionary feature (fixed too, unless it sits at each maze's own square)

    def for_target(self, session: Session, spec: Spec, seed: int) -> SteeringVector:
        """The vector to add on `seed`'s maze; SteerError (the seed is skipped) when its own pair cannot be built."""
        if self.fixed is not None:
            return self.fixed
        if self.feature is not None:
            return self.feature.vector(session.target_maze(spec, seed))
        assert self.pair is not None
        try:
            return build_vector(session, spec, seed, self.pair, self.layer)
        except SteerError as e:
            raise SteerError(f"{self.where} ({self.kind}): {e}") from None

    @property
    def source_seed(self) -> int | None:
        """The seed a fixed vector came from; None for each target's own vector."""
        return self.fixed.meta.get("source_seed") if self.fixed is not None else None

    @property
    def source_seeds(self) -> list[int] | None:
        """The seeds a mean vector averages over; None for a single maze's vector."""
        return self.fixed.meta.get("source_seeds") if self.fixed is not None else None

    def describe(self) -> dict[str, Any]:
        """The vector as reports record it."""
        return {
            "label": self.label,
            "kind": self.kind,
            "coeff": self.coeff,
            "layer": self.layer,
            "source_seed": self.source_seed,
            **({"source_seeds": self.source_seeds} if self.source_seeds is not None else {}),
            **(
                {"skipped_source_seeds": self.fixed.meta.get("skipped_source_seeds", [])}
                if self.fixed is not None and self.source_seeds is not None
                else {}
            ),
            "file": str(self.file) if self.file else None,
            **({"feature": self.feature.describe()} if self.feature is not None else {}),
        }


def plan_vector(
    session: Session,
    spec: Spec,
    vspec: VectorSpec,
    coeff: float,
    where: str,
    layer: str | None = None,
    label: str | None = None,
) -> VectorPlan:
    """Resolve a vector spec before any target is touched: load its file or build its source-seed vector.

    `layer` is a per-vector layer (a compose item's); without it the spec's `layer` applies, and without that
    the file's layer or the default layer.
    """
    explicit, layer_field = (layer, f"{where}.layer") if layer is not None else (spec.layer, "layer")
    if vspec.feature is not None:
        fp = plan_feature(session, spec, vspec.feature, where, explicit, layer_field)
        fixed_vec = None if fp.per_maze else fp.vector(first_maze(session, spec) if fp.spec.at else None)
        at = vspec.feature.at
        place = f"at {list(at) if isinstance(at, tuple) else at}" if at is not None else "at given positions"
        name = label or f"{coeff:+g} x feature {vspec.feature.index} ({vspec.feature.file.name}, {place})"
        return VectorPlan(where, KIND, fp.layer, coeff, name, fixed=fixed_vec, feature=fp)
    if vspec.file is not None:
        vec = load_vector_file(session, vspec.file, explicit, where, layer_field, spec.allow_other_checkpoint)
        name = label or f"{coeff:+g} x {vec.kind} ({vspec.file.name})"
        return VectorPlan(where, vec.kind, vec.layer, coeff, name, fixed=vec, file=vspec.file)
    assert vspec.pair is not None
    resolved = resolve_layer(session.policy, explicit or DEFAULT_LAYER, layer_field)
    fixed = None
    if vspec.source_seed is not None:
        try:
            fixed = build_vector(session, spec, vspec.source_seed, vspec.pair, resolved)
        except SteerError as e:
            raise SteerError(f"{where}.source_seed: seed {vspec.source_seed}: {e}") from None
    elif vspec.source_seeds is not None:
        fixed = mean_vector(session, spec, vspec.source_seeds, vspec.pair, resolved, where)
    origin = f" (seed {vspec.source_seed})" if vspec.source_seed is not None else ""
    if fixed is not None and vspec.source_seeds is not None:
        origin = f" (mean of {len(fixed.meta['source_seeds'])} mazes)"
    name = label or f"{coeff:+g} x {vspec.pair.kind}{origin}"
    return VectorPlan(where, vspec.pair.kind, resolved, coeff, name, pair=vspec.pair, fixed=fixed)


@dataclass(frozen=True)
class OneVectorPlan:
    """The start of a study plan built around one vector (apply, sweep-coeff, behaviour): the spec and the
    vector's plan; the study's subclass adds its `cell`."""

    spec: Spec
    vector: VectorPlan

    @property
    def layer(self) -> str:
        return self.vector.layer

    def target_and_vector(self, session: Session, seed: int) -> tuple[Maze, SteeringVector]:
        """The maze a cell runs on and the vector it adds there; SteerError (the seed is skipped) if either fails."""
        return session.target_maze(self.spec, seed), self.vector.for_target(session, self.spec, seed)
