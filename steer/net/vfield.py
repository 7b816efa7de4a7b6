"""Vector fields: the policy's action distribution with the mouse on every open square of a maze.

Observations are rendered once per maze (`FieldInputs`) and reused for the original and every patched
pass. Probabilities are computed as procgen-tools does (a Categorical over log-softmax logits), so fields
match the published research code to float32 precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze, Square
from steer.net.hooks import check_shape, patching, replacing
from steer.net.policy import ImpalaPolicy, obs_to_tensor

# Action indices of procgen's 15-way maze action space, by the direction the mouse moves.
LEFT = (0, 1, 2)
DOWN = (3,)
UP = (5,)
RIGHT = (6, 7, 8)
NOOP = (4, 9, 10, 11, 12, 13, 14)
DIRECTIONS: dict[tuple[int, int], tuple[int, ...]] = {(0, -1): LEFT, (-1, 0): DOWN, (1, 0): UP, (0, 1): RIGHT}

Patch = tuple[str, torch.Tensor, float]
# Batches of 64 keep a 64x64 conv's working set in cache on small CPUs; bigger batches were slower here.
BATCH_SIZE = 64
DEFAULT_SITE = "block2.res1.resadd_out"


def action_probs(logits: torch.Tensor) -> torch.Tensor:
    """Probabilities the way the trained policy samples them: Categorical(logits=log_softmax(logits))."""
    log_probs = F.log_softmax(logits, dim=-1)
    return F.softmax(log_probs - log_probs.logsumexp(dim=-1, keepdim=True), dim=-1)


def direction_prob(probs: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """P(the mouse moves by `step`), summing the actions that move that way; works on (..., 15)."""
    return probs[..., list(DIRECTIONS[step])].sum(axis=-1)


@dataclass(frozen=True)
class FieldInputs:
    """A maze, the squares its field covers, and their rendered observations (reused across passes).

    It also memoises the network prefix up to an injection site, so the original field and every patched
    field at that site (each coefficient of a sweep) run only the suffix of the network.
    """

    maze: Maze
    positions: tuple[Square, ...]
    obs: torch.Tensor  # (N, 3, 64, 64) float32
    _prefixes: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False, compare=False)

    def prefix(self, policy: ImpalaPolicy, site: str, batch_size: int) -> dict[str, torch.Tensor]:
        """Values of the sites the suffix from `site` reads, computed once per (policy, site)."""
        key = f"{id(policy)}:{site}"
        if key not in self._prefixes:
            keep = policy.prefix_needs(site)
            chunks = [
                policy.run({"input": self.obs[i : i + batch_size]}, stop=site, keep=keep)
                for i in range(0, len(self.obs), batch_size)
            ]
            self._prefixes.clear()  # one site at a time: activations of early layers are large
            self._prefixes[key] = {k: torch.cat([c[k] for c in chunks]) for k in keep}
        return self._prefixes[key]

    @classmethod
    def render(cls, renderer: MazeRenderer, maze: Maze, device: torch.device | str = "cpu") -> FieldInputs:
        cheese = maze.cheese
        positions = tuple(sq for sq in maze.open_squares() if sq != cheese)
        frames = renderer.observe_positions(maze, positions)
        return cls(maze, positions, obs_to_tensor(frames, device))


@dataclass(frozen=True)
class VectorField:
    maze: Maze
    positions: tuple[Square, ...]
    probs: np.ndarray  # (N, 15) float32

    @property
    def arrows(self) -> np.ndarray:
        """(N, 2) net movement: x = P(right) - P(left), y = P(up) - P(down)."""
        p = torch.from_numpy(self.probs)
        # float32 group sums in torch, as procgen-tools computes them.
        x = p[:, list(RIGHT)].sum(-1) - p[:, list(LEFT)].sum(-1)
        y = p[:, list(UP)].sum(-1) - p[:, list(DOWN)].sum(-1)
        return torch.stack([x, y], dim=-1).numpy()

    def index(self, square: Square) -> int:
        return self.positions.index(square)

    def to_json(self) -> dict[str, object]:
        return {"probs": self.probs.tolist(), "arrows": self.arrows.tolist()}


def vector_fields(
    policy: ImpalaPolicy,
    inputs: FieldInputs,
    layer: str,
    deltas: Sequence[torch.Tensor | None],
    batch_size: int = BATCH_SIZE,
) -> list[VectorField]:
    """Fields with each of `deltas` (None: unpatched) added at one layer, sharing one suffix pass.

    The original field and a coefficient sweep's patched fields differ only in what is added at the
    injection site, so their suffixes run as one batch: small late-layer convolutions are far more
    efficient on K times as many observations than K times on few.
    """
    site = policy.resolve(layer)
    k = len(deltas)
    out: list[list[torch.Tensor]] = [[] for _ in range(k)]
    with torch.inference_mode():
        values = inputs.prefix(policy, site, batch_size)
        n = len(inputs.positions)
        step = max(1, batch_size // k) if k else batch_size
        for i in range(0, n, step):
            batch = {}
            for name, v in values.items():
                chunk = v[i : i + step]
                if name == site:
                    batch[name] = torch.cat([chunk if d is None else chunk + d.to(chunk.device) for d in deltas])
                else:
                    batch[name] = torch.cat([chunk] * k)
            logits = policy.run(batch, start=site, keep=frozenset({"fc_policy"}))["fc_policy"]
            for j, part in enumerate(action_probs(logits).cpu().split(len(logits) // k)):
                out[j].append(part)
    fields = [
        VectorField(inputs.maze, inputs.positions, torch.cat(parts).numpy() if parts else np.zeros((0, 15), np.float32))
        for parts in out
    ]
    for f in fields:
        check_finite(f.probs, [layer])
    return fields


def vector_field(
    policy: ImpalaPolicy,
    inputs: FieldInputs,
    patches: Sequence[Patch] = (),
    batch_size: int = BATCH_SIZE,
    reuse_from: str | None = DEFAULT_SITE,
) -> VectorField:
    """The field of `inputs.maze` with `coeff * vector` added at each patch's layer.

    The network runs from the earliest patched site (or `reuse_from` when unpatched) on a memoised prefix,
    so the original and patched passes of one maze share everything before the injection point.
    """
    sites = [policy.resolve(layer) for layer, _, _ in patches]
    start = min(sites, key=policy.site_index) if sites else (policy.resolve(reuse_from) if reuse_from else None)
    chunks = []
    with torch.inference_mode():
        # The prefix is computed (or memoised) before the patch hooks exist: inside them it would carry the
        # patch already, and the start site's hook would then add it a second time.
        values = {"input": inputs.obs} if start is None else inputs.prefix(policy, start, batch_size)
    with torch.inference_mode(), patching(policy, patches) if patches else nullcontext():
        n = len(inputs.positions)
        for i in range(0, n, batch_size):
            batch = {k: v[i : i + batch_size] for k, v in values.items()}
            logits = policy.run(batch, start=start, keep=frozenset({"fc_policy"}))["fc_policy"]
            chunks.append(action_probs(logits).cpu())
    probs = torch.cat(chunks).numpy() if chunks else np.zeros((0, 15), np.float32)
    check_finite(probs, [layer for layer, _, _ in patches])
    return VectorField(inputs.maze, inputs.positions, probs)


class NonFiniteError(SteerError):
    """The network produced NaN or inf; the runner adds the maze's seed to the message."""


def check_finite(probs: np.ndarray, layers: Sequence[str]) -> None:
    """Stop at NaN or inf: left alone they would look like "undefined" metrics and draw streaks in figures."""
    if np.isfinite(probs).all():
        return
    where = f"with a vector added at {', '.join(dict.fromkeys(layers))}" if layers else "unpatched"
    raise NonFiniteError(
        f"the action probabilities are not finite (NaN or inf) {where}. Causes: a vector holding NaN or inf, a "
        "coefficient so large that coefficient × vector overflows float32, or a checkpoint with non-finite "
        "weights. Check the vector file and the coefficient."
    )


# -- both facings -----------------------------------------------------------------------------------------
#
# The observation shows the mouse's square and, on most squares, which way its sprite faces (procgen's
# `is_reflected`: 1 after a move right, 0 after a move left, and 0 at reset); the sprite is a few pixels wide,
# and where it falls on the pixel grid both facings can render alike. Fields above render the maze's own facing,
# 0 for a level as generated. The exact behaviour of a policy (steer.analysis.chain) needs the action distribution
# in both.

FACINGS = (0, 1)


@dataclass(frozen=True)
class FacingField:
    """Action probabilities on every open non-cheese square in both facings."""

    maze: Maze
    positions: tuple[Square, ...]  # N squares, in `Maze.open_squares` order without the cheese
    probs: np.ndarray  # (2, N, 15) float32: probs[facing, i] for facing 0 and 1

    def index(self, square: Square) -> int:
        return self.positions.index(square)


def facing_inputs(renderer: MazeRenderer, maze: Maze, device: torch.device | str = "cpu") -> FieldInputs:
    """Inputs holding every open non-cheese square twice: first all in facing 0, then all in facing 1.

    One `FieldInputs` keeps the prefix memo and batching of `vector_field(s)`: both facings of the original
    and every patched pass run as one set of observations.
    """
    cheese = maze.cheese
    squares = tuple(sq for sq in maze.open_squares() if sq != cheese)
    states = [s for facing in FACINGS for s in maze.with_mouse_states(squares, facing=facing)]
    frames = renderer.observe_many(states)
    return FieldInputs(maze, squares + squares, obs_to_tensor(frames, device))


def _split_facings(field: VectorField) -> FacingField:
    n = len(field.positions) // 2
    return FacingField(field.maze, field.positions[:n], field.probs.reshape(2, n, -1))


def facing_field(
    policy: ImpalaPolicy, inputs: FieldInputs, patches: Sequence[Patch] = (), batch_size: int = BATCH_SIZE
) -> FacingField:
    """Both facings' action probabilities of `inputs` (from `facing_inputs`), with `patches` applied."""
    return _split_facings(vector_field(policy, inputs, patches, batch_size))


def facing_fields(
    policy: ImpalaPolicy,
    inputs: FieldInputs,
    patch_sets: Sequence[Sequence[Patch]],
    batch_size: int = BATCH_SIZE,
) -> list[FacingField]:
    """One `FacingField` per patch set (an empty set: unpatched).

    When every non-empty set is one patch at one shared layer (the original and patched passes of a study),
    the sets share one suffix batch through `vector_fields`; otherwise each runs on its own.
    """
    layers = {policy.resolve(layer) for patches in patch_sets for layer, _, _ in patches}
    if len(layers) == 1 and all(len(patches) <= 1 for patches in patch_sets):
        deltas: list[torch.Tensor | None] = []
        for patches in patch_sets:
            for layer, vector, _ in patches:
                check_shape(policy, layer, vector)
            deltas.append(patches[0][2] * patches[0][1] if patches else None)
        fields = vector_fields(policy, inputs, layers.pop(), deltas, batch_size)
    else:
        fields = [vector_field(policy, inputs, patches, batch_size) for patches in patch_sets]
    return [_split_facings(f) for f in fields]


def replaced_facing_fields(
    policy: ImpalaPolicy,
    inputs: FieldInputs,
    layer: str,
    replacements: Sequence[Callable[[torch.Tensor], torch.Tensor] | None],
    batch_size: int = BATCH_SIZE,
) -> list[FacingField]:
    """Both facings' action probabilities with the site's activation replaced by each `f(x)` (None: as computed).

    Every pass runs the suffix from `layer` on the same memoised prefix, computed before any hook is set (inside
    one the replacement would be applied twice), so `f = identity` gives the unpatched field bit for bit.
    """
    site = policy.resolve(layer)
    with torch.inference_mode():
        values = inputs.prefix(policy, site, batch_size)
    n = len(inputs.positions)
    fields = []
    for fn in replacements:
        chunks = []
        with torch.inference_mode(), replacing(policy, [(layer, fn)]) if fn is not None else nullcontext():
            for i in range(0, n, batch_size):
                batch = {k: v[i : i + batch_size] for k, v in values.items()}
                logits = policy.run(batch, start=site, keep=frozenset({"fc_policy"}))["fc_policy"]
                chunks.append(action_probs(logits).cpu())
        probs = torch.cat(chunks).numpy() if chunks else np.zeros((0, 15), np.float32)
        if not np.isfinite(probs).all():
            raise NonFiniteError(
                f"the action probabilities are not finite (NaN or inf) with {layer} replaced by a function of itself "
                "(a dictionary's reconstruction). Check the dictionary's weights; fit it again."
            )
        fields.append(_split_facings(VectorField(inputs.maze, inputs.positions, probs)))
    return fields
