"""Retargeting measurements: which channels locate the cheese, and where editing them sends the agent.

Channel scores (one maze, the mouse on its start square): the activations at a site with the cheese and with
it removed give the cheese vector Δ (with − without). For each channel,

- `peak_distance`: the Euclidean distance, in activation positions, from the channel's strongest activation
  (the argmax of its map with the cheese) to the cheese's position (`steer.net.retarget.activation_position`);
- `share`: the share of the channel's ‖Δ‖² at the cheese's position.

The same scores against the position of another maze's cheese (a fixed derangement of the run's mazes) are the
shuffled control: a channel that locates the cheese scores better at its own maze's cheese than at a random
cheese-like position.

Retargeting (one maze, one target square): P(the agent reaches the target within the horizon) and E[steps]
exactly from the chain (`steer.analysis.chain.reach`), for the pixel patch at the target's position, no
intervention, the cheese moved to the target, and a patch of as many random channels; and procgen-tools'
score, the geometric mean of the probabilities of the shortest path's actions (facing 0, as procgen-tools'
vector fields show the mouse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch

from steer.analysis.chain import Reach, build_chain, reach
from steer.analysis.metrics import describe_change, describe_many
from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze, Square
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.retarget import PixelPatch, activation_position, pixel_fields, spatial_grid
from steer.net.vfield import DIRECTIONS, FacingField, action_probs, direction_prob, facing_fields, facing_inputs


def cheese_maps(policy: ImpalaPolicy, renderer: MazeRenderer, maze: Maze, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """(activations with the cheese, cheese vector) at `layer`, each (channels, H, W), the mouse where it is."""
    if maze.cheese is None:
        raise SteerError("This maze has no cheese, so no channel can be scored on it; use levels as generated.")
    site = policy.resolve(layer)
    frames = np.stack([renderer.observe_maze(maze), renderer.observe_maze(maze.without_cheese())])
    with torch.inference_mode():
        values = policy.run({"input": obs_to_tensor(frames, next(policy.parameters()).device)}, stop=site)[site]
    acts = values.cpu().numpy().astype(np.float64)
    return acts[0], acts[0] - acts[1]


def channel_scores(acts: np.ndarray, delta: np.ndarray, position: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: the peak's distance to `position` and the share of ‖Δ‖² at `position` (module docstring)."""
    c, _, w = acts.shape
    peaks = acts.reshape(c, -1).argmax(axis=1)
    rows, cols = np.divmod(peaks, w)
    distance = np.hypot(rows - position[0], cols - position[1])
    energy = (delta**2).reshape(c, -1)
    total = energy.sum(axis=1)
    at = energy[:, position[0] * w + position[1]]
    share = np.divide(at, total, out=np.zeros(c), where=total > 0)
    return distance, share


def derangement(seeds: Sequence[int], seed: int) -> dict[int, int]:
    """Each seed paired with another seed of the list (never itself; a fixed shuffle), for the shuffled control."""
    if len(seeds) < 2:
        raise SteerError("seeds: the shuffled-cheese control needs at least two mazes.")
    order = np.random.default_rng(seed).permutation(len(seeds))
    # A rotation of a random order is a derangement: every maze gets the next maze's cheese in that order.
    return {int(seeds[order[i]]): int(seeds[order[(i + 1) % len(seeds)]]) for i in range(len(seeds))}


def geometric_path_probability(field: FacingField, path: Sequence[Square]) -> float:
    """procgen-tools' retargeting score: the geometric mean over the shortest path's steps of P(the step's action),
    in facing 0. 1 for a path of no steps."""
    if len(path) < 2:
        return 1.0
    logs = []
    for here, there in pairwise(path):
        step = (there[0] - here[0], there[1] - here[1])
        if step not in DIRECTIONS:
            raise SteerError(f"{list(here)} -> {list(there)} is not a step between neighbouring squares.")
        p = float(direction_prob(field.probs[0, field.index(here)], step))
        logs.append(np.log(max(p, 1e-300)))
    return float(np.exp(np.mean(logs)))


@dataclass(frozen=True)
class MazeRetarget:
    """Every target's exact reach under each condition, and the geometric path score, for one maze."""

    maze: Maze
    targets: tuple[Square, ...]
    conditions: dict[str, Reach]  # intervention, none, cheese_moved (optional), random (optional)
    geometric: dict[str, np.ndarray]  # the same conditions' geometric path probabilities (cheese_moved excluded)


def patches_for(
    maze: Maze, targets: Sequence[Square], layer: str, grid: int, channels: Sequence[int], value: float, **kw: object
) -> list[PixelPatch]:
    return [
        PixelPatch(layer, tuple(int(c) for c in channels), activation_position(maze, t, grid), value, **kw)  # type: ignore[arg-type]
        for t in targets
    ]


def retarget_maze(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    targets: Sequence[Square],
    layer: str,
    channels: Sequence[int],
    value: float,
    default: float | None = None,
    random_channels: Sequence[int] | None = None,
    cheese_moved: bool = True,
    first_map: bool = False,
    batch_size: int = 64,
) -> MazeRetarget:
    """The retargetability of `maze` (its cheese already removed or kept, as the caller chose) for `targets`."""
    _, grid = spatial_grid(policy, layer)
    device = next(policy.parameters()).device
    inputs = facing_inputs(renderer, maze, device)
    (original,) = facing_fields(policy, inputs, [()], batch_size)
    paths = [maze.shortest_path(maze.mouse, t) or [maze.mouse] for t in targets]
    conditions: dict[str, Reach] = {}
    geometric: dict[str, np.ndarray] = {}
    runs = {"intervention": channels}
    if random_channels is not None:
        runs["random"] = random_channels
    for name, chans in runs.items():
        patches = patches_for(maze, targets, layer, grid, chans, value, default=default, first_map=first_map)
        fields = pixel_fields(policy, inputs, patches, batch_size)
        conditions[name] = reach([build_chain(f) for f in fields], targets)
        geometric[name] = np.array([geometric_path_probability(f, p) for f, p in zip(fields, paths, strict=True)])
    conditions["none"] = reach(build_chain(original), targets)
    geometric["none"] = np.array([geometric_path_probability(original, p) for p in paths])
    if cheese_moved:
        # The input-edit reference: the cheese on the target changes every observation, so each target needs its
        # own rendering and full forward pass (the reason it costs far more than the intervention map).
        ps, steps = [], []
        for t in targets:
            if t == maze.mouse:
                ps.append(1.0)
                steps.append(0.0)
                continue
            moved = maze.with_cheese(t)
            (f,) = facing_fields(policy, facing_inputs(renderer, moved, device), [()], batch_size)
            r = reach(build_chain(f), [t])
            ps.append(float(r.p[0]))
            steps.append(float(r.steps[0]))
        conditions["cheese_moved"] = Reach(tuple(targets), np.array(ps), np.array(steps))
    return MazeRetarget(maze, tuple(targets), conditions, geometric)


# -- channel ranking ---------------------------------------------------------------------------------


def maze_channel_scores(
    policy: ImpalaPolicy, renderer: MazeRenderer, maze: Maze, layer: str, shuffled_cheese: Square
) -> dict[str, list[float]]:
    """One maze's per-channel scores at its own cheese and at `shuffled_cheese` (another maze's cheese)."""
    _, grid = spatial_grid(policy, layer)
    acts, delta = cheese_maps(policy, renderer, maze, layer)
    assert maze.cheese is not None  # cheese_maps refuses a maze without one
    own = channel_scores(acts, delta, activation_position(maze, maze.cheese, grid))
    other = channel_scores(acts, delta, activation_position(maze, shuffled_cheese, grid))
    return {
        "peak_distance": own[0].tolist(),
        "share": own[1].tolist(),
        "peak_distance_shuffled": other[0].tolist(),
        "share_shuffled": other[1].tolist(),
    }


def rank_channels(per_maze: Sequence[dict[str, list[float]]]) -> list[dict[str, object]]:
    """Channels ranked by their mean peak distance to the cheese over mazes (closest first), each with n, the
    95% bootstrap intervals over mazes of every score and the paired shuffled − own difference with its Wilcoxon
    p-value (steer.analysis.metrics.describe / describe_change)."""
    if not per_maze:
        return []
    keys = ("peak_distance", "peak_distance_shuffled", "share", "share_shuffled")
    arrays = {k: np.array([m[k] for m in per_maze], dtype=np.float64) for k in keys}  # (mazes, channels)
    n_channels = arrays["peak_distance"].shape[1]
    columns = [list(arrays[k][:, c]) for c in range(n_channels) for k in keys]
    described = describe_many(columns)
    rows: list[dict[str, object]] = []
    for c in range(n_channels):
        stats = dict(zip(keys, described[c * len(keys) : (c + 1) * len(keys)], strict=True))
        rows.append(
            {
                "channel": c,
                **stats,
                # Positive: the channel's peak is nearer its own maze's cheese than another maze's.
                "peak_distance_gain": describe_change(
                    list(arrays["peak_distance"][:, c]), list(arrays["peak_distance_shuffled"][:, c])
                ),
                # Positive: more of the cheese vector's energy at the cheese than at another maze's cheese.
                "share_gain": describe_change(list(arrays["share_shuffled"][:, c]), list(arrays["share"][:, c])),
            }
        )
    rows.sort(key=lambda r: (r["peak_distance"]["mean"], -r["share"]["mean"]))  # type: ignore[index]
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


# -- the resampling test -------------------------------------------------------------------------------


def _site_values(policy: ImpalaPolicy, renderer: MazeRenderer, maze: Maze, site: str) -> torch.Tensor:
    frame = renderer.observe_maze(maze)
    with torch.inference_mode():
        obs = obs_to_tensor(frame[np.newaxis], next(policy.parameters()).device)
        return policy.run({"input": obs}, stop=site, keep=frozenset({site}))[site][0]


def resampled_tv(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    donor: Maze,
    layer: str,
    channel_sets: dict[str, Sequence[int]],
    batch_size: int = 64,
) -> dict[str, float]:
    """Mean over the maze's squares (facing 0) of the total variation between the original action distribution and
    the one with `channels` replaced by `donor`'s activations (the donor's observation with its mouse at the
    start: one map copied into every square's pass), for each named channel set."""
    site = policy.resolve(layer)
    inputs = facing_inputs(renderer, maze, next(policy.parameters()).device)
    donor_map = _site_values(policy, renderer, donor, site)
    out = {}
    with torch.inference_mode():
        values = inputs.prefix(policy, site, batch_size)
        n = len(inputs.positions) // 2  # facing 0 only: the first half of facing_inputs
        (original,) = facing_fields(policy, inputs, [()], batch_size)
        for name, channels in channel_sets.items():
            ch = [int(c) for c in channels]
            patched = values[site][:n].clone()
            patched[:, ch] = donor_map[ch]
            batch = {k: (patched if k == site else v[:n]) for k, v in values.items()}
            logits = policy.run(batch, start=site, keep=frozenset({"fc_policy"}))["fc_policy"]
            q = action_probs(logits).cpu().numpy().astype(np.float64)
            p = original.probs[0].astype(np.float64)
            out[name] = float(0.5 * np.abs(p - q).sum(axis=1).mean())
    return out


def resampling_test(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    donor: Maze,
    layer: str,
    channels: Sequence[int],
    random_channels: Sequence[int],
    batch_size: int = 64,
) -> dict[str, float | None]:
    """The resampling test on one maze (with its cheese): the chosen and the random channels replaced by a donor
    maze's, the donor's cheese moved onto this maze's cheese square ("same") or left where it is ("different").
    None where the donor cannot take the cheese there (a wall or its start) or already has it there."""
    assert maze.cheese is not None
    out: dict[str, float | None] = {}
    sets = {"cheese_channels": channels, "random_channels": random_channels}
    same_ok = donor.is_open(maze.cheese) and maze.cheese != donor.mouse
    donors = {
        "same": donor.with_cheese(maze.cheese) if same_ok else None,
        "different": donor if donor.cheese is not None and donor.cheese != maze.cheese else None,
    }
    for where, d in donors.items():
        tv = resampled_tv(policy, renderer, maze, d, layer, sets, batch_size) if d is not None else {}
        for name in sets:
            out[f"{name}_{where}"] = tv.get(name)
    return out
