"""Reading features: what each dictionary feature's (and each channel's) spatial map tracks on one maze, scored
against a shuffled control drawn from the same maze's own open squares.

The states are the chain's (`facing_inputs`): the mouse on every open square but the cheese's, both facings,
the cheese kept. A unit's map is its activation over the site's H x W positions: a feature's code
(`TopKSAE.encode` at each position) or a channel's raw activation, so channels are scored exactly as features
are (with a dictionary whose features are the channels, the two sets of scores are equal).

A property is a target map over the positions; a score is Pearson's r between a unit's map and it, over the
positions that lie under some square of the world (`activation_position`, the one mapping steer has):

- `cheese`, `top_right`, `decision`: the unit's mean map over the states against a bump (a Gaussian of one
  position's width, the maximum over the squares of a set) at the cheese's square, the open squares of the
  inner maze's top-right 5x5 region (`region_squares`), and the decision square (mazes without one are left out).
- `mouse`: per state, the unit's map against a bump at the mouse's square; the mean over states.
- `walls`: the mean map against the share of wall squares under each position.

The control is the same score for a target drawn from the maze itself, `draws` times, averaged: a bump at a
random open square (for `mouse`, per state, one not on the mouse's position), a 5x5 region whose top-right corner
is a random open square where such a region fits (not the real corner), the wall labels of the inner maze's
squares permuted (the margin outside the maze stays wall). Each control target lies inside the maze as the real
one does, so a unit that merely fires inside the maze gains nothing. `gain` = score - control, per maze.

A unit whose map is constant on a maze (a feature that never fires there) has no correlation: None, left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steer.maze.decision_features import REGION, region_squares
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze, Square
from steer.net.policy import ImpalaPolicy
from steer.net.retarget import activation_position
from steer.net.sae import TopKSAE
from steer.net.vfield import facing_inputs

PROPERTIES = ("cheese", "mouse", "top_right", "walls", "decision")
ABOUT = {
    "cheese": "mean map over the mouse's states vs a bump at the cheese; control: a random open square",
    "mouse": "each state's map vs a bump at the mouse; control: a random open square off the mouse's position",
    "top_right": "mean map vs the inner maze's top-right 5x5 region; control: a 5x5 region at a random open square",
    "walls": "mean map vs the share of walls under each position; control: the inner maze's walls permuted",
    "decision": "mean map vs a bump at the decision square; control: a random open square",
}
WIDTH = 1.0  # the bump's standard deviation, in activation positions (about one square of an easy maze)
# Streams of np.random.default_rng([shuffle_seed, maze seed, STREAM]): one per property, so that adding draws to
# one property never moves another's.
STREAMS = {p: 10 + i for i, p in enumerate(PROPERTIES)}


@dataclass(frozen=True)
class UnitScores:
    """One property on one maze, for every unit: the score and the control's mean (None: undefined)."""

    score: list[float | None]
    control: list[float | None]

    @property
    def gain(self) -> list[float | None]:
        return [None if s is None or c is None else s - c for s, c in zip(self.score, self.control, strict=True)]

    def to_json(self) -> dict[str, list[float | None]]:
        return {"score": self.score, "control": self.control}


@dataclass(frozen=True)
class MazeMaps:
    """One maze's scores for the dictionary's features and the site's channels; `mean_map` and `peak` feed the
    feature cards (the features' mean maps over the states, (features, H, W), and each feature's peak there)."""

    features: dict[str, UnitScores]  # by property; absent: the property is undefined on this maze
    channels: dict[str, UnitScores]
    missing: dict[str, str]  # property -> why it was left out on this maze
    mean_map: np.ndarray
    peak: list[float]


def covered(maze: Maze, grid: int) -> tuple[np.ndarray, dict[Square, int]]:
    """The positions under some square of the world (a bool mask of grid*grid) and each square's flat position."""
    where = {}
    for r in range(maze.world_dim):
        for c in range(maze.world_dim):
            y, x = activation_position(maze, (r, c), grid)
            where[(r, c)] = y * grid + x
    mask = np.zeros(grid * grid, dtype=bool)
    mask[list(where.values())] = True
    return mask, where


def bump(flat: Sequence[int], grid: int) -> np.ndarray:
    """The maximum over `flat` positions of a Gaussian of width WIDTH centred there, (grid*grid,)."""
    ys, xs = np.divmod(np.arange(grid * grid), grid)
    out = np.zeros(grid * grid)
    for p in flat:
        py, px = divmod(p, grid)
        out = np.maximum(out, np.exp(-((ys - py) ** 2 + (xs - px) ** 2) / (2 * WIDTH**2)))
    return out


def _standardised(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `x` (..., P) centred and scaled to unit norm over P; and which rows vary at all."""
    c = x - x.mean(-1, keepdims=True)
    norm = np.sqrt((c**2).sum(-1, keepdims=True))
    ok = norm[..., 0] > 1e-9 * (1 + np.abs(x).max(-1))
    return np.divide(c, norm, out=np.zeros_like(c), where=norm > 0), ok


def correlations(maps: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Pearson's r of each unit's map (U, P) with each target (T, P): (U, T), NaN where a map is constant."""
    zm, ok = _standardised(maps)
    zt, _ = _standardised(targets)
    r = zm @ zt.T
    r[~ok] = np.nan
    return r


def _listed(x: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in x]


def _scores(score: np.ndarray, control: np.ndarray) -> UnitScores:
    return UnitScores(_listed(score), _listed(control))


def _random_squares(rng: np.random.Generator, options: Sequence[Square], draws: int) -> list[Square]:
    return [options[int(i)] for i in rng.integers(len(options), size=draws)]


def region_at(maze: Maze, corner: Square) -> list[Square]:
    """The open squares of the REGION x REGION block whose top-right square is `corner`."""
    r0, c0 = corner
    return [
        (r, c) for r in range(r0 - REGION + 1, r0 + 1) for c in range(c0 - REGION + 1, c0 + 1) if maze.is_open((r, c))
    ]


def site_maps(
    policy: ImpalaPolicy, renderer: MazeRenderer, maze: Maze, site: str, batch_size: int
) -> tuple[list[Square], np.ndarray]:
    """The chain's states' mouse squares (both facings) and the site's activations there, (states, C, H, W)."""
    inputs = facing_inputs(renderer, maze, next(policy.parameters()).device)
    with torch.inference_mode():
        a = inputs.prefix(policy, policy.resolve(site), batch_size)[policy.resolve(site)]
    return list(inputs.positions), a.float().cpu().numpy()


def feature_codes(sae: TopKSAE, acts: np.ndarray) -> np.ndarray:
    """The dictionary's codes at every position of every state, (states, features, H, W)."""
    s, c, h, w = acts.shape
    rows = torch.from_numpy(acts).permute(0, 2, 3, 1).reshape(-1, c)
    with torch.inference_mode():
        z = sae.encode(rows)
    return z.reshape(s, h, w, -1).permute(0, 3, 1, 2).numpy()


def unit_scores(
    maze: Maze, mice: Sequence[Square], maps: np.ndarray, grid: int, shuffle_seed: int, seed: int, draws: int
) -> tuple[dict[str, UnitScores], dict[str, str]]:
    """Every property's scores for units whose maps over the states are `maps` (states, U, H, W)."""
    mask, where = covered(maze, grid)
    flat = maps.reshape(*maps.shape[:2], -1)[:, :, mask].astype(np.float64)  # (S, U, P)
    mean = flat.mean(0)
    assert maze.cheese is not None
    opened = maze.open_squares()

    def rng(prop: str) -> np.random.Generator:
        return np.random.default_rng([shuffle_seed, seed, STREAMS[prop]])

    def at(squares: Sequence[Square]) -> np.ndarray:
        return bump([where[s] for s in squares], grid)[mask]

    def against(target: np.ndarray, controls: Sequence[np.ndarray]) -> UnitScores:
        r = correlations(mean, np.stack([target, *controls]))
        return _scores(r[:, 0], r[:, 1:].mean(1))

    out, missing = {}, {}

    def off(square: Square | None) -> list[Square]:
        return [s for s in opened if square is None or where[s] != where[square]]

    def at_square(prop: str, square: Square) -> None:
        """A bump at `square` against bumps at random open squares off its position."""
        options = off(square)
        if not options:  # a tiny maze whose open squares all share one position (hard mode on a coarse grid)
            missing[prop] = "no open square off its position for the control"
            return
        out[prop] = against(at([square]), [at([s]) for s in _random_squares(rng(prop), options, draws)])

    at_square("cheese", maze.cheese)

    # mouse: per state against its own square, the control per state a square off the mouse's position
    g = rng("mouse")
    score, control = np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
    valid = np.zeros(flat.shape[1])
    for i, mouse in enumerate(mice):
        options = off(mouse)
        if not options:
            continue  # this state has no control square; the others still count
        r = correlations(flat[i], np.stack([at([mouse]), *(at([s]) for s in _random_squares(g, options, draws))]))
        ok = np.isfinite(r[:, 0])
        score[ok] += r[ok, 0]
        control[ok] += r[ok, 1:].mean(1)
        valid += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mouse"] = _scores(np.where(valid > 0, score / valid, np.nan), np.where(valid > 0, control / valid, np.nan))

    lo, hi = maze.inner_bounds
    region = [s for s in region_squares(maze) if maze.is_open(s)]
    corners = [s for s in opened if s[0] >= lo + REGION - 1 and s[1] >= lo + REGION - 1 and s != (hi, hi)]
    if maze.maze_dim <= REGION or not corners:
        missing["top_right"] = f"the maze is {maze.maze_dim} squares wide: no {REGION}x{REGION} region elsewhere"
    else:
        picks = _random_squares(rng("top_right"), corners, draws)
        out["top_right"] = against(at(region), [at(region_at(maze, s)) for s in picks])

    walls = np.zeros(grid * grid)
    count = np.zeros(grid * grid)
    inner = [(r, c) for r in range(lo, hi + 1) for c in range(lo, hi + 1)]

    def wall_map(is_wall: dict[Square, bool]) -> np.ndarray:
        walls[:], count[:] = 0, 0
        for sq, p in where.items():
            walls[p] += is_wall.get(sq, not maze.is_open(sq))
            count[p] += 1
        return (walls / np.maximum(count, 1))[mask]

    labels = [not maze.is_open(s) for s in inner]
    g = rng("walls")
    shuffled = [wall_map(dict(zip(inner, g.permutation(labels), strict=True))) for _ in range(draws)]
    out["walls"] = against(wall_map({}), shuffled)

    ds = maze.decision_square()
    if ds is None:
        missing["decision"] = "no decision square (the cheese is on the path to the top-right)"
    else:
        at_square("decision", ds)
    return out, missing


def maze_maps(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    site: str,
    sae: TopKSAE,
    grid: int,
    shuffle_seed: int,
    seed: int,
    draws: int,
    batch_size: int,
) -> MazeMaps:
    """One maze's feature and channel scores for every property (module docstring)."""
    mice, acts = site_maps(policy, renderer, maze, site, batch_size)
    codes = feature_codes(sae, acts)
    features, missing = unit_scores(maze, mice, codes, grid, shuffle_seed, seed, draws)
    channels, _ = unit_scores(maze, mice, acts, grid, shuffle_seed, seed, draws)
    mean_map = codes.mean(0)
    return MazeMaps(features, channels, missing, mean_map, mean_map.reshape(len(mean_map), -1).max(1).tolist())
