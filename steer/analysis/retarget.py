"""Retargeting measurements: which channels locate the cheese, and where editing them sends the agent.

Channel scores (one maze, the mouse on its start square): the activations at a site with the cheese and with
it removed give the cheese vector Δ (with − without). For each channel,

- `peak_distance`: the Euclidean distance, in activation positions, from the channel's strongest activation
  (the argmax of its map with the cheese) to the cheese's position (`steer.net.retarget.activation_position`);
- `share`: the share of the channel's ‖Δ‖² at the cheese's position;
- `max_activation`: the channel's largest activation over positions (its natural scale on that maze).

The same scores at a decoy are the shuffled control (`peak_distance_shuffled`, `share_shuffled`): the decoy is
one of this maze's own open squares where the cheese could have been (not the mouse's start, and not on the
cheese's activation position), drawn per maze from a seed (`decoy_square`). A decoy from the maze's own open
squares lies inside its inner area as the cheese does, so a channel that merely peaks somewhere inside the maze
gains nothing over it; a channel that locates the cheese scores better at the cheese than at the decoy.

Retargeting (one maze, one target square): P(the agent reaches the target within the horizon) and E[steps]
exactly from the chain (`steer.analysis.chain.reach`), for each patched condition (`Condition`: channels set to
values at the target's position, or at another square's), no intervention, and the cheese moved to the target;
and procgen-tools' score, the geometric mean of the probabilities of the shortest path's actions (facing 0, as
procgen-tools' vector fields show the mouse). The controls' squares and values are computed here
(`elsewhere_squares`, `scaled_values`, from each channel's `natural_maxima`), one way for the study and tests.

Just over 400 lines: the channel scores, the exact reach per condition and the controls' squares and values are
one measurement of one patch, read together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from scipy import stats

from steer.analysis.chain import Reach, build_chain, reach
from steer.analysis.feature_clamp import FeatureCondition, clamp_patches
from steer.analysis.metrics import describe_change, describe_many
from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze, Square
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.retarget import PixelPatch, SiteReplacement, activation_position, pixel_fields, spatial_grid
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
    """Each seed paired with another seed of the list (never itself; a fixed shuffle): the resampling test's
    donor mazes."""
    if len(seeds) < 2:
        raise SteerError("seeds: pairing each maze with another needs at least two mazes.")
    order = np.random.default_rng(seed).permutation(len(seeds))
    # A rotation of a random order is a derangement: every maze gets the next maze in that order as its donor.
    return {int(seeds[order[i]]): int(seeds[order[(i + 1) % len(seeds)]]) for i in range(len(seeds))}


# Streams of `np.random.default_rng([seed value, maze seed, STREAM, ...])`: each control draws from its own, so
# drawing one never shifts another's draws (the random channels keep `[control_seed, maze seed]`, as before).
DECOY_STREAM = 1
ELSEWHERE_STREAM = 2


def decoy_square(maze: Maze, grid: int, shuffle_seed: int, seed: int) -> Square | None:
    """The shuffled control's decoy for `maze` (with its cheese), drawn from `shuffle_seed` and the maze's seed:
    one of the maze's own open squares, uniformly, among those where the cheese could have been instead. Not
    the mouse's start (procgen never puts the cheese there) and not on the cheese's activation position (a decoy
    there would score as the cheese). None where no square qualifies (a tiny maze on a coarse grid)."""
    if maze.cheese is None:
        raise SteerError("This maze has no cheese, so it has no decoy for the cheese; use levels as generated.")
    at = activation_position(maze, maze.cheese, grid)
    options = [sq for sq in maze.open_squares() if sq != maze.mouse and activation_position(maze, sq, grid) != at]
    if not options:
        return None
    rng = np.random.default_rng([shuffle_seed, seed, DECOY_STREAM])
    return options[int(rng.integers(len(options)))]


def elsewhere_squares(
    maze: Maze, targets: Sequence[Square], grid: int, control_seed: int, seed: int
) -> list[Square] | None:
    """For each target, another square of `maze` to set the chosen channels at ("same channels, another open
    square"): uniformly among the squares a target can be (open, not the mouse's, not the cheese's) whose
    activation position differs from the target's, drawn from `control_seed`, the maze's seed and the target,
    so a target gets the same square whatever the other targets are. None where some target has no such
    square (a tiny maze on a coarse grid): the control is then not run on that maze."""
    options = [sq for sq in maze.open_squares() if sq != maze.mouse and sq != maze.cheese]
    positions = {sq: activation_position(maze, sq, grid) for sq in options}
    out = []
    for t in targets:
        at = activation_position(maze, t, grid)
        here = [sq for sq in options if positions[sq] != at]
        if not here:
            return None
        rng = np.random.default_rng([control_seed, seed, ELSEWHERE_STREAM, t[0], t[1]])
        out.append(here[int(rng.integers(len(here)))])
    return out


def natural_maxima(per_maze: Sequence[dict[str, list[float]]]) -> np.ndarray:
    """Each channel's natural maximum: the mean over mazes of its largest activation over positions
    (`max_activation`, mouse at the start, cheese present). The mean of per-maze peaks is the value a channel
    typically reaches when it signals, less driven by one odd maze than the largest over mazes."""
    if not per_maze:
        raise SteerError("channels: no maze with a cheese to measure the channels' natural maxima on.")
    return np.array([m["max_activation"] for m in per_maze], dtype=np.float64).mean(axis=0)


def scaled_values(
    value: float, channels: Sequence[int], random_channels: Sequence[int], natural_max: np.ndarray
) -> tuple[float, ...]:
    """The values that set each random channel to the same multiple of its own natural maximum as the chosen
    channel it stands in for: random channel k gets value / natural_max[channels[k]] x natural_max[random
    channels[k]]. Matched one to one, so the random set carries exactly the chosen set's multiples; the random
    channels were drawn in random order, so which chosen channel each stands in for is random too."""
    if len(channels) != len(random_channels):
        raise SteerError(f"{len(channels)} chosen channels but {len(random_channels)} random ones; give as many.")
    out = []
    for c, r in zip(channels, random_channels, strict=True):
        if not natural_max[c] > 0 or not natural_max[r] > 0:
            bad = c if not natural_max[c] > 0 else r
            raise SteerError(
                f"channel {bad}'s natural maximum is {natural_max[bad]:.3g}, not positive, so no multiple of it "
                "can be matched; choose other channels."
            )
        out.append(float(value / natural_max[c] * natural_max[r]))
    return tuple(out)


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
class Condition:
    """A patched condition: `channels` set to `value` (one for all, or one per channel) at each target's
    activation position, or, with `at`, at the position of `at[j]` for target j (the elsewhere control)."""

    channels: tuple[int, ...]
    value: float | tuple[float, ...]
    at: tuple[Square, ...] | None = None


@dataclass(frozen=True)
class MazeRetarget:
    """Every target's exact reach under each condition, and the geometric path score, for one maze."""

    maze: Maze
    targets: tuple[Square, ...]
    conditions: dict[str, Reach]  # the patched conditions by name, none, cheese_moved (optional)
    geometric: dict[str, np.ndarray]  # the same conditions' geometric path probabilities (cheese_moved excluded)
    at: dict[str, tuple[Square, ...]]  # where a condition set its channels instead of at the target (elsewhere)


def patches_for(
    maze: Maze,
    targets: Sequence[Square],
    layer: str,
    grid: int,
    channels: Sequence[int],
    value: float | tuple[float, ...],
    at: Sequence[Square] | None = None,
    **kw: object,
) -> list[PixelPatch]:
    """One patch per target: `channels` set to `value` at the target's position (or at `at[j]`'s)."""
    squares = list(targets) if at is None else list(at)
    if len(squares) != len(targets):
        raise SteerError(f"{len(targets)} targets but {len(squares)} squares to set the channels at.")
    return [
        PixelPatch(layer, tuple(int(c) for c in channels), activation_position(maze, sq, grid), value, **kw)  # type: ignore[arg-type]
        for sq in squares
    ]


def retarget_maze(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    targets: Sequence[Square],
    layer: str,
    patched: dict[str, Condition | FeatureCondition],
    default: float | None = None,
    cheese_moved: bool = True,
    first_map: bool = False,
    batch_size: int = 64,
) -> MazeRetarget:
    """The retargetability of `maze` (its cheese already removed or kept, as the caller chose) for `targets`,
    under each of the `patched` conditions (channels set, or a dictionary feature clamped), no intervention and
    (optionally) the cheese moved."""
    _, grid = spatial_grid(policy, layer)
    device = next(policy.parameters()).device
    inputs = facing_inputs(renderer, maze, device)
    (original,) = facing_fields(policy, inputs, [()], batch_size)
    paths = [maze.shortest_path(maze.mouse, t) or [maze.mouse] for t in targets]
    conditions: dict[str, Reach] = {}
    geometric: dict[str, np.ndarray] = {}
    for name, cond in patched.items():
        patches: list[PixelPatch] | list[SiteReplacement]
        if isinstance(cond, FeatureCondition):
            patches = clamp_patches(maze, targets, layer, grid, cond)
        else:
            patches = patches_for(
                maze, targets, layer, grid, cond.channels, cond.value, at=cond.at, default=default, first_map=first_map
            )
        fields = pixel_fields(policy, inputs, patches, batch_size)
        # Reach is always of the target, wherever the channels were set: chain j absorbs at targets[j].
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
    at = {name: cond.at for name, cond in patched.items() if cond.at is not None}
    return MazeRetarget(maze, tuple(targets), conditions, geometric, at)


# -- the distance claim --------------------------------------------------------------------------------

# Values equal to this many decimals are ties: the chain's probabilities carry float error far below it, and
# ranking that error would turn a flat maze into a spurious trend.
SPEARMAN_DECIMALS = 9
TOO_FEW_TARGETS = "fewer than 2 targets with a distance from the path"


def path_spearman(distances: Sequence[int | None], values: Sequence[float]) -> tuple[float | None, str]:
    """Spearman's rho between targets' distances and values (scipy.stats.spearmanr), and how it was decided:
    "defined"; "flat" (every distance or every value the same, so rho is undefined: the maze shows no trend and
    enters as 0, counted); or "excluded" (fewer than 2 targets with a distance: no trend can be seen, None)."""
    pairs = [(d, round(float(v), SPEARMAN_DECIMALS)) for d, v in zip(distances, values, strict=True) if d is not None]
    if len(pairs) < 2:
        return None, "excluded"
    d, v = zip(*pairs, strict=True)
    if len(set(d)) < 2 or len(set(v)) < 2:
        return 0.0, "flat"
    return float(stats.spearmanr(d, v).statistic), "defined"


# -- channel ranking ---------------------------------------------------------------------------------


def maze_channel_scores(
    policy: ImpalaPolicy, renderer: MazeRenderer, maze: Maze, layer: str, decoy: Square
) -> dict[str, list[float]]:
    """One maze's per-channel scores at its own cheese and at `decoy` (`decoy_square`: another of its open
    squares), and each channel's largest activation over positions."""
    _, grid = spatial_grid(policy, layer)
    acts, delta = cheese_maps(policy, renderer, maze, layer)
    assert maze.cheese is not None  # cheese_maps refuses a maze without one
    own = channel_scores(acts, delta, activation_position(maze, maze.cheese, grid))
    other = channel_scores(acts, delta, activation_position(maze, decoy, grid))
    return {
        "peak_distance": own[0].tolist(),
        "share": own[1].tolist(),
        "peak_distance_shuffled": other[0].tolist(),
        "share_shuffled": other[1].tolist(),
        "max_activation": acts.reshape(len(acts), -1).max(axis=1).tolist(),
    }


def ranking_scores(
    policy: ImpalaPolicy, renderer: MazeRenderer, mazes: dict[int, Maze], layer: str, shuffle_seed: int
) -> tuple[list[dict[str, list[float]]], dict[int, str]]:
    """`maze_channel_scores` of each maze (by seed) against its decoy, and the mazes left out, each with why."""
    _, grid = spatial_grid(policy, layer)
    scores, left_out = [], {}
    for seed, maze in mazes.items():
        if maze.cheese is None:
            left_out[seed] = "no cheese"
            continue
        decoy = decoy_square(maze, grid, shuffle_seed, seed)
        if decoy is None:
            left_out[seed] = "no open square off the cheese's activation position for a decoy"
            continue
        scores.append(maze_channel_scores(policy, renderer, maze, layer, decoy))
    return scores, left_out


def rank_channels(per_maze: Sequence[dict[str, list[float]]]) -> list[dict[str, object]]:
    """Channels ranked by their mean peak distance to the cheese over mazes (closest first), each with n, the
    95% bootstrap intervals over mazes of every score and the paired shuffled − own difference with its Wilcoxon
    p-value (steer.analysis.metrics.describe / describe_change); `max_activation`'s mean is the channel's
    natural maximum (`natural_maxima`)."""
    if not per_maze:
        return []
    keys = ("peak_distance", "peak_distance_shuffled", "share", "share_shuffled", "max_activation")
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
                # Positive: the channel's peak is nearer the maze's cheese than the maze's decoy square.
                "peak_distance_gain": describe_change(
                    list(arrays["peak_distance"][:, c]), list(arrays["peak_distance_shuffled"][:, c])
                ),
                # Positive: more of the cheese vector's energy at the cheese than at the decoy.
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
