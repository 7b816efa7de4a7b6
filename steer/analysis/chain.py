"""Exact episode behaviour of a policy on one maze: the absorbing Markov chain it induces, without sampling.

What the policy sees depends on the mouse only through its square and its facing (procgen's `is_reflected`
sprite flag), and procgen's maze moves the mouse deterministically given the action. So a policy, patched or
not, on a fixed maze is a Markov chain on (square, facing) states, absorbed at the cheese, and cut off by the
500-step timeout. The game's rules, checked against the real environment in tests/test_behaviour.py:

- LEFT (actions 0, 1, 2: the diagonals move horizontally only) moves one square left and sets facing 0;
  RIGHT (6, 7, 8) moves right and sets facing 1. The facing changes even when a wall blocks the move.
- DOWN (3) and UP (5) move vertically and keep the facing; the other actions (4, 9-14) do nothing.
- A move into a wall or out of the world leaves the mouse where it is.
- A level starts in facing 0. Stepping onto the cheese ends the episode, also on the last step; otherwise
  it ends after `timeout - cur_time` actions (500 for a fresh level).

Everything is computed by finite-horizon dynamic programming over the state distribution, one sparse
matrix product a step, so a maze costs a few milliseconds.

Visits are counted at the times the mouse acts, t = 0 .. T-1 for an episode of T steps, plus the cheese
when it is reached. The expected visits of all squares therefore sum to the expected episode length, and
a policy that never moves has 500 visits on its start square. (A square first stepped on by the very last
action of a timed-out episode is not counted: procgen resets the level right after that action, so a real
episode never shows the mouse there either.)

Over 400 lines on purpose: one model (the chain), its build, its solves and the two questions asked of it
(behaviour, reach); split, each half would need the other's internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from steer.errors import SteerError
from steer.maze.env import MazeRenderer
from steer.maze.layout import Maze, Square
from steer.net.policy import ImpalaPolicy
from steer.net.vfield import DOWN, FACINGS, LEFT, NOOP, RIGHT, UP, FacingField, Patch, facing_fields, facing_inputs

# (actions, (d_row, d_col), facing afterwards: None keeps the current one)
MOVES: tuple[tuple[tuple[int, ...], Square, int | None], ...] = (
    (LEFT, (0, -1), 0),
    (RIGHT, (0, 1), 1),
    (UP, (1, 0), None),
    (DOWN, (-1, 0), None),
    (NOOP, (0, 0), None),
)
_MOVE_OF_ACTION: dict[int, tuple[Square, int | None]] = {a: (step, f) for acts, step, f in MOVES for a in acts}

GreedyEnd = Literal["cheese", "top_right", "loop", "timeout"]
# Probability mass below which the rest of an episode cannot move a result beyond float64 rounding.
_NEGLIGIBLE = 1e-15


def next_state(maze: Maze, square: Square, facing: int, action: int) -> tuple[Square, int]:
    """The mouse's square and facing after `action`, by procgen's maze rules (see the module docstring)."""
    (dr, dc), new_facing = _MOVE_OF_ACTION[int(action)]
    target = (square[0] + dr, square[1] + dc)
    return (target if maze.is_open(target) else square), (facing if new_facing is None else new_facing)


def horizon_of(maze: Maze) -> int:
    """Actions left before procgen's timeout ends the episode: 500 for a fresh level."""
    return int(maze.state.game["timeout"]) - int(maze.state.game["cur_time"])


@dataclass(frozen=True, eq=False)
class Chain:
    """The transient part of the chain: states are (square, facing), indexed `facing * N + i`.

    `transient[s, s']` is P(s -> s') between non-cheese states; `to_cheese[s]` is P(s -> the cheese). Each
    row of `transient` plus `to_cheese` sums to 1.
    """

    maze: Maze
    squares: tuple[Square, ...]  # the N open non-cheese squares, in the field's order
    transient: sp.csr_matrix  # (2N, 2N)
    to_cheese: np.ndarray  # (2N,)
    probs: np.ndarray = field(repr=False)  # (2, N, 15) float64, rows normalised: the policy per state

    @property
    def n_states(self) -> int:
        return 2 * len(self.squares)

    def state(self, square: Square, facing: int) -> int:
        if facing not in FACINGS:
            raise SteerError(f"facing: {facing!r} is not a facing; use 0 or 1.")
        try:
            return facing * len(self.squares) + self.squares.index(tuple(square))
        except ValueError:
            raise SteerError(
                f"Square {list(square)} is not an open non-cheese square of this maze, so the mouse cannot act there."
            ) from None

    def square_of(self, state: int) -> Square:
        return self.squares[state % len(self.squares)]


def build_chain(field: FacingField) -> Chain:
    """The chain of a policy given as action probabilities in both facings (`steer.net.vfield.facing_field`)."""
    maze, squares = field.maze, tuple(field.positions)
    n = len(squares)
    if field.probs.shape != (2, n, 15):
        raise SteerError(f"Expected probabilities of shape (2, {n}, 15), got {field.probs.shape}.")
    probs = field.probs.astype(np.float64)
    # Rows sum to 1 only to float32 precision; a chain whose rows leak 1e-7 a step would lose mass over 500.
    probs /= probs.sum(axis=-1, keepdims=True)
    index = {sq: i for i, sq in enumerate(squares)}
    cheese = maze.cheese
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    data: list[np.ndarray] = []
    to_cheese = np.zeros(2 * n)
    src = np.arange(2 * n)
    for actions, (dr, dc), new_facing in MOVES:
        p = probs[..., list(actions)].sum(axis=-1).ravel()  # (2N,), facing-major like the states
        dest = np.empty(n, dtype=np.int64)
        into_cheese = np.zeros(n, dtype=bool)
        for i, (r, c) in enumerate(squares):
            target = (r + dr, c + dc)
            if target == cheese:
                into_cheese[i] = True
            dest[i] = index.get(target, i)  # a wall, the world's edge, or the cheese (masked below): stay
        for facing in FACINGS:
            lo = facing * n
            to = (facing if new_facing is None else new_facing) * n + dest
            keep = ~into_cheese
            rows.append(src[lo : lo + n][keep])
            cols.append(to[keep])
            data.append(p[lo : lo + n][keep])
            to_cheese[lo : lo + n][into_cheese] += p[lo : lo + n][into_cheese]
    transient = sp.coo_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(2 * n, 2 * n)
    ).tocsr()  # duplicate entries (a blocked move and a no-op both staying put) are summed
    transient.eliminate_zeros()  # actions the policy never takes
    return Chain(maze, squares, transient, to_cheese, probs)


@dataclass(frozen=True)
class GreedyPath:
    """The path of the most likely action at each step: squares from the start, and why it stopped.

    `end` is `cheese` or `top_right` when it reaches that square (the last square), `loop` when the next
    state (square and facing) was visited before (the last square is where the loop closes), and `timeout`
    when the horizon runs out.
    """

    squares: tuple[Square, ...]
    end: GreedyEnd

    def to_json(self) -> dict[str, Any]:
        return {"path": [list(sq) for sq in self.squares], "end": self.end}


@dataclass(frozen=True, eq=False)
class Behaviour:
    """Exact episode statistics of one policy on one maze from one start state (see the module docstring)."""

    start: Square
    start_facing: int
    horizon: int
    cheese: Square | None
    top_right: Square
    p_cheese: float  # P(reach the cheese within the horizon)
    steps_to_cheese: float | None  # E[steps | reached the cheese]; None when it cannot be reached
    mean_steps: float  # E[episode length], timeouts included
    p_top_right: float  # P(visit the inner top-right square before the episode ends)
    p_targets: Mapping[str, float]  # P(visit each extra target square before the episode ends)
    occupancy: np.ndarray = field(repr=False)  # (world, world): expected visits, both facings, row 0 at the bottom
    greedy: GreedyPath = field(repr=False)
    p_regions: Mapping[str, float] = field(default_factory=dict)  # P(visit any square of each region asked for)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": list(self.start),
            "start_facing": self.start_facing,
            "horizon": self.horizon,
            "cheese": None if self.cheese is None else list(self.cheese),
            "top_right": list(self.top_right),
            "p_cheese": self.p_cheese,
            "steps_to_cheese": self.steps_to_cheese,
            "mean_steps": self.mean_steps,
            "p_top_right": self.p_top_right,
            "p_targets": dict(self.p_targets),
            **({"p_regions": dict(self.p_regions)} if self.p_regions else {}),
            "greedy": self.greedy.to_json(),
            # rows bottom first, as squares are indexed; 6 decimals keep a 25x25 map a few kB
            "occupancy": np.round(self.occupancy, 6).tolist(),
        }


def _target_states(chain: Chain, square: Square) -> np.ndarray:
    world = chain.maze.world_dim
    if not (0 <= square[0] < world and 0 <= square[1] < world):
        raise SteerError(
            f"Target square {list(square)} is outside the {world}x{world} world; rows and columns run from 0 "
            f"to {world - 1} (row 0 is the bottom)."
        )
    if square not in chain.squares:
        return np.zeros(0, dtype=np.int64)  # a wall (never visited) or the cheese (handled by the caller)
    i = chain.squares.index(square)
    return np.array([i, len(chain.squares) + i])


def greedy_path(chain: Chain, start: Square, facing: int, horizon: int) -> GreedyPath:
    """Follow the argmax action from (start, facing); see `GreedyPath` for where it stops."""
    maze = chain.maze
    top_right = maze.top_right_square
    square = tuple(start)
    path = [square]
    seen = {(square, facing)}
    for _ in range(horizon):
        if square == top_right:
            return GreedyPath(tuple(path), "top_right")
        action = int(np.argmax(chain.probs[facing, chain.squares.index(square)]))
        square, facing = next_state(maze, square, facing, action)
        path.append(square)
        if square == maze.cheese:
            return GreedyPath(tuple(path), "cheese")
        if (square, facing) in seen:
            return GreedyPath(tuple(path), "loop")
        seen.add((square, facing))
    return GreedyPath(tuple(path), "top_right" if square == top_right else "timeout")


def behaviour(
    field: FacingField | Chain,
    targets: Mapping[str, Square] | None = None,
    start: Square | None = None,
    start_facing: int | None = None,
    horizon: int | None = None,
    regions: Mapping[str, Sequence[Square]] | None = None,
) -> Behaviour:
    """Exact statistics of the episode from `start` (default: the maze's mouse) in `start_facing` (default:
    the maze's facing, 0 for a level as generated) over `horizon` steps (default: what the state's timeout
    leaves, 500 for a fresh level). `targets` are extra squares whose visit probability is reported; `regions`
    are sets of squares whose P(visit any of them) is (`p_regions`; the cheese in a region counts when reached).

    Kept whole: one pass of one algorithm (the chain's absorbing probabilities, occupancy and regions
    from the same solves); split, its steps would pass the same arrays around."""
    chain = field if isinstance(field, Chain) else build_chain(field)
    maze = chain.maze
    start = tuple(start or maze.mouse)
    facing = maze.facing if start_facing is None else start_facing
    horizon = horizon_of(maze) if horizon is None else int(horizon)
    if horizon < 0:
        raise SteerError(f"horizon: {horizon} steps; it must be 0 or more.")
    s0 = chain.state(start, facing)
    # The inner top-right square first, then the caller's targets (a target may be named "top_right" too).
    squares: list[Square] = [maze.top_right_square, *(tuple(v) for v in (targets or {}).values())]
    names = list(targets or {})
    areas = [tuple(tuple(sq) for sq in area) for area in (regions or {}).values()]
    n_states, k = chain.n_states, len(squares) + len(areas)
    states_of = [_target_states(chain, sq) for sq in squares] + [
        np.concatenate([_target_states(chain, sq) for sq in area] or [np.zeros(0, dtype=np.int64)]) for area in areas
    ]
    # A region holding the cheese is entered when the cheese is reached before any other of its squares.
    cheese_in = np.array([False] * len(squares) + [maze.cheese in area for area in areas])
    cheese_hits = np.zeros(k)

    # Block 0 of the state vector follows the episode. Block 1 + j follows it with target j made absorbing:
    # mass on target j's states is not propagated, so all mass seen there at time t arrived at t for the first
    # time, and the block's summed occupancy of the target is P(visit it). One block-diagonal sparse product a
    # step advances all blocks.
    step_matrix = chain.transient.T.tocsr()
    blocks = [step_matrix]
    for states in states_of:
        keep = np.ones(n_states)
        keep[states] = 0.0
        blocks.append((step_matrix @ sp.diags(keep)).tocsr())
    advance = sp.block_diag(blocks, format="csr")
    x = np.zeros(n_states * (1 + k))
    x[s0::n_states] = 1.0
    visits = np.zeros_like(x)
    reach = np.zeros(horizon)  # P(step t + 1 enters the cheese)
    for t in range(horizon):
        visits += x
        reach[t] = chain.to_cheese @ x[:n_states]
        if cheese_in.any():
            for j in np.flatnonzero(cheese_in):
                cheese_hits[j] += chain.to_cheese @ x[(1 + j) * n_states : (2 + j) * n_states]
        x = advance @ x
        # Stop once what is left could change no result by more than float64 rounding does.
        if x.sum() * (horizon - t) < _NEGLIGIBLE:
            break
    occupancy = visits[:n_states]
    hits = [visits[(1 + j) * n_states + states].sum() + cheese_hits[j] for j, states in enumerate(states_of)]

    # Sums of probabilities can round a hair past 1; clip so that a probability is always one.
    p_cheese = min(float(reach.sum()), 1.0)
    steps = float(np.arange(1, horizon + 1) @ reach / p_cheese) if p_cheese > 0 else None
    p_visit = [
        p_cheese if square == maze.cheese else min(float(hit), 1.0)
        for square, hit in zip(squares, hits[: len(squares)], strict=True)
    ]
    p_area = [min(float(hit), 1.0) for hit in hits[len(squares) :]]
    grid = np.zeros((maze.world_dim, maze.world_dim))
    n = len(chain.squares)
    for i, (r, c) in enumerate(chain.squares):
        grid[r, c] = occupancy[i] + occupancy[n + i]
    return Behaviour(
        start=start,
        start_facing=facing,
        horizon=horizon,
        cheese=maze.cheese,
        top_right=maze.top_right_square,
        p_cheese=p_cheese,
        steps_to_cheese=steps,
        mean_steps=min(float(occupancy.sum()), float(horizon)),  # rounding can add 1e-13 to an all-timeout 500
        p_top_right=p_visit[0],
        p_targets=dict(zip(names, p_visit[1:], strict=True)),
        occupancy=grid,
        greedy=greedy_path(chain, start, facing, horizon),
        p_regions=dict(zip(regions or {}, p_area, strict=True)),
    )


def maze_behaviours(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    maze: Maze,
    patch_sets: Sequence[Sequence[Patch]] = ((),),
    targets: Mapping[str, Square] | None = None,
) -> list[Behaviour]:
    """Exact behaviour of the policy under each patch set (an empty set: unpatched), from the maze's mouse.

    Both facings of every square are rendered once and the passes share one batch (`facing_fields`).
    """
    inputs = facing_inputs(renderer, maze, next(policy.parameters()).device)
    return [behaviour(f, targets) for f in facing_fields(policy, inputs, patch_sets)]


@dataclass(frozen=True)
class Reach:
    """P(the mouse reaches each target square within the horizon) and E[steps | it does], one per target."""

    targets: tuple[Square, ...]
    p: np.ndarray  # (T,)
    steps: np.ndarray  # (T,), NaN where the target is never reached


def reach(
    chains: Chain | Sequence[Chain],
    targets: Sequence[Square],
    start: Square | None = None,
    start_facing: int | None = None,
    horizon: int | None = None,
) -> Reach:
    """Exact P(reach target j) and expected steps to it, for each target j under chain j (or one chain for all).

    Each target is made absorbing in its own chain: mass that steps onto it is counted as arriving at that time
    and taken out, so the arrivals are first-passage probabilities. The cheese, if the maze has one, still ends
    the episode, so a target behind the cheese is reached only if the mouse avoids the cheese on its way; a
    target that is the cheese is reached when the chain is absorbed there. As in `behaviour`, a square counts
    as reached when the mouse acts on it, at times 1 .. horizon - 1 (procgen resets the level right after the
    last action of a timed-out episode, so a real episode never shows the mouse on a square entered then); the
    cheese counts at every time up to the horizon, as `Behaviour.p_cheese` does. For the square the mouse
    starts on, P = 1 in 0 steps. All targets advance together, one block-diagonal sparse product a step, so a
    whole retargetability map costs one pass of the horizon.

    Kept whole: one batched computation over every target's chain; its steps share the same arrays."""
    many = [chains] * len(targets) if isinstance(chains, Chain) else list(chains)
    if len(many) != len(targets):
        raise SteerError(f"{len(many)} chains for {len(targets)} targets; give one chain, or one per target.")
    t_count = len(targets)
    if not t_count:
        return Reach((), np.zeros(0), np.zeros(0))
    maze = many[0].maze
    start = tuple(start or maze.mouse)
    facing = maze.facing if start_facing is None else start_facing
    horizon = horizon_of(maze) if horizon is None else int(horizon)
    squares = [tuple(sq) for sq in targets]
    blocks, to_target, x_parts = [], [], []
    for chain, square in zip(many, squares, strict=True):
        n_states = chain.n_states
        states = _target_states(chain, square)
        keep = np.ones(n_states)
        keep[states] = 0.0
        step = chain.transient.T.tocsr()
        # Rows of `into` pick the mass that lands on the target this step (from the transient part or, for a
        # target that is the cheese, through `to_cheese`).
        if square == chain.maze.cheese:
            into_vec = chain.to_cheese
        elif len(states):
            into_vec = np.asarray(chain.transient[:, states].sum(axis=1)).ravel()
        else:  # a wall: never reached
            into_vec = np.zeros(n_states)
        blocks.append((sp.diags(keep) @ step).tocsr())  # mass that reached the target is taken out
        to_target.append(into_vec)
        x = np.zeros(n_states)
        if square != start:
            x[chain.state(start, facing)] = 1.0
        x_parts.append(x)
    advance = sp.block_diag(blocks, format="csr")
    arrive = sp.block_diag([v[np.newaxis] for v in to_target], format="csr")  # (T, total states)
    x = np.concatenate(x_parts)
    is_cheese = np.array([sq == maze.cheese for sq in squares])
    arrivals = np.zeros((horizon, t_count))  # arrivals[t, j]: P(first arrival at target j at time t + 1)
    for t in range(horizon):
        arrivals[t] = arrive @ x
        x = advance @ x
        if x.sum() * (horizon - t) < _NEGLIGIBLE:
            break
    if horizon:
        # Entering a non-cheese target with the last action of the horizon is never seen (see above).
        arrivals[horizon - 1, ~is_cheese] = 0.0
    p = np.minimum(arrivals.sum(axis=0), 1.0)
    times = np.arange(1, horizon + 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.where(p > 0, times @ arrivals / np.where(p > 0, p, 1.0), np.nan)
    at_start = np.array([sq == start for sq in squares])
    p[at_start], steps[at_start] = 1.0, 0.0
    return Reach(tuple(squares), p, steps)
