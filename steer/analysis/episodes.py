"""Real sampled episodes: the policy acting in procgen's own maze game, many episodes at once.

`steer.analysis.chain` derives episode statistics from a model of the game; this module plays the game, so the two
can be compared. N copies of a vectorised procgen environment are set to the maze's state bytes (as
`steer.maze.env` does for rendering), the policy (with any patch hooked in) samples an action in each from a
seeded generator, the environment steps, and the mouse's square and facing are read back from each state.
An episode ends when procgen says so: the cheese is reached (reward) or the timeout runs out.

The policy is a deterministic function of the frame, so action probabilities are memoised by the frame's
bytes: a maze shows only a few hundred distinct frames however many episodes run. Every frame still comes
from the environment, so this does not assume what the frame depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
import torch

from steer.errors import SteerError
from steer.maze.env import MazeRenderer, Mode, _procgen_env  # the renderer's env factory, with its deadlock guard
from steer.maze.layout import Maze, Square
from steer.maze.state import read_mouse
from steer.net.hooks import patching
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.vfield import BATCH_SIZE, Patch, action_probs

# procgen's `distribution_mode` field values.
_MODES: dict[int, Mode] = {0: "easy", 1: "hard"}
NOOP_ACTION = 4


@dataclass(frozen=True)
class Episode:
    """One episode: the (square, facing) states the mouse acted in, t = 0 .. steps - 1, and how it ended."""

    states: tuple[tuple[Square, int], ...]
    steps: int
    reached_cheese: bool
    cheese: Square | None

    @property
    def squares(self) -> tuple[Square, ...]:
        """Squares in order, ending on the cheese when it was reached (the state after the last step of a
        timed-out episode is never shown by procgen, which resets at once)."""
        acted = tuple(sq for sq, _ in self.states)
        return (*acted, self.cheese) if self.reached_cheese and self.cheese is not None else acted

    def visited(self, square: Square) -> bool:
        return tuple(square) in self.squares

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "reached_cheese": self.reached_cheese,
            "squares": [list(sq) for sq in self.squares],
            "facings": [f for _, f in self.states],
        }


@dataclass(frozen=True)
class Episodes:
    """Sampled episodes of one policy on one maze, with their empirical statistics."""

    maze: Maze
    seed: int
    episodes: tuple[Episode, ...]
    frames_seen: int = 0  # distinct frames the environment showed the policy
    frames_computed: int = 0  # of those, how many were not among the prefilled frames

    @property
    def n(self) -> int:
        return len(self.episodes)

    @property
    def reached(self) -> np.ndarray:
        return np.array([e.reached_cheese for e in self.episodes], dtype=bool)

    @property
    def steps(self) -> np.ndarray:
        return np.array([e.steps for e in self.episodes], dtype=np.int64)

    @property
    def p_cheese(self) -> float:
        return float(self.reached.mean()) if self.n else float("nan")

    @property
    def steps_to_cheese(self) -> float | None:
        """Mean steps of the episodes that reached the cheese; None if none did."""
        reached = self.reached
        return float(self.steps[reached].mean()) if reached.any() else None

    @property
    def mean_steps(self) -> float:
        return float(self.steps.mean()) if self.n else float("nan")

    def p_visit(self, square: Square) -> float:
        return float(np.mean([e.visited(square) for e in self.episodes])) if self.n else float("nan")

    @property
    def p_top_right(self) -> float:
        return self.p_visit(self.maze.top_right_square)

    def cheese_interval(self, confidence: float = 0.99) -> tuple[float, float]:
        """Exact (Clopper-Pearson) binomial interval for P(reach the cheese)."""
        ci = scipy.stats.binomtest(int(self.reached.sum()), self.n).proportion_ci(confidence)
        return float(ci.low), float(ci.high)

    def to_json(self, with_episodes: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "seed": self.seed,
            "p_cheese": self.p_cheese,
            "steps_to_cheese": self.steps_to_cheese,
            "mean_steps": self.mean_steps,
            "p_top_right": self.p_top_right,
            "frames_seen": self.frames_seen,
            "frames_computed": self.frames_computed,
        }
        if with_episodes:
            out["episodes"] = [e.to_json() for e in self.episodes]
        return out


class _EnvStates:
    """Reads and sets the states of single environments of a vectorised procgen env.

    procgen's `get_state`/`set_state` methods serialise or set every environment (~140 us each to read, mostly
    its RNG states), but only the running ones matter here, and one finished episode's environment is
    restarted at a time. This makes the same C calls as those methods, per index.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.fast = hasattr(env, "call_c_func") and hasattr(env, "_ffi")
        if self.fast:
            from procgen.env import MAX_STATE_SIZE

            self.size = MAX_STATE_SIZE
            self.buf = env._ffi.new(f"char[{MAX_STATE_SIZE}]")

    def get(self, indices: Sequence[int]) -> list[bytes]:
        if not self.fast:
            states = self.env.callmethod("get_state")
            return [states[i] for i in indices]
        out = []
        for i in indices:
            n = self.env.call_c_func("get_state", int(i), self.buf, self.size)
            out.append(bytes(self.env._ffi.buffer(self.buf, n)))
        return out

    def set(self, index: int, state: bytes) -> None:
        if self.fast:
            self.env.call_c_func("set_state", int(index), state, len(state))
            return
        states = self.env.callmethod("get_state")
        states[index] = state
        self.env.callmethod("set_state", states)


class _CachedPolicy:
    """Action probabilities per frame, computed once per distinct frame under the given patches."""

    def __init__(self, policy: ImpalaPolicy, patches: Sequence[Patch], batch_size: int, cache: bool) -> None:
        self.policy, self.patches, self.batch_size, self.cache = policy, patches, batch_size, cache
        self.device = next(policy.parameters()).device
        self.memo: dict[bytes, np.ndarray] = {}
        self.seen: set[bytes] = set()
        self.computed = 0

    def _run(self, frames: np.ndarray) -> np.ndarray:
        self.computed += len(frames)
        out = []
        with torch.inference_mode(), patching(self.policy, self.patches) if self.patches else nullcontext():
            for i in range(0, len(frames), self.batch_size):
                logits, _ = self.policy(obs_to_tensor(frames[i : i + self.batch_size], self.device))
                out.append(action_probs(logits).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 15), np.float32)

    def prefill(self, frames: np.ndarray) -> None:
        keys = list(dict.fromkeys(f.tobytes() for f in frames))
        index = {f.tobytes(): i for i, f in enumerate(frames)}
        self.memo.update(zip(keys, self._run(frames[[index[k] for k in keys]]), strict=True))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        keys = [f.tobytes() for f in frames]
        self.seen.update(keys)
        if not self.cache:
            return self._run(frames)
        new = list(dict.fromkeys(k for k in keys if k not in self.memo))
        if new:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            probs = self._run(frames[[first[k] for k in new]])
            self.memo.update(zip(new, probs, strict=True))
        return np.stack([self.memo[k] for k in keys])


def sample_actions(probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: row i's action is the first whose cumulative probability exceeds `uniforms[i]`."""
    cdf = np.cumsum(probs.astype(np.float64), axis=1)
    cdf /= cdf[:, -1:]  # float32 rows sum to 1 only approximately
    return np.minimum((uniforms[:, None] >= cdf).sum(axis=1), probs.shape[1] - 1)


def _mode_of(maze: Maze) -> Mode:
    mode = _MODES.get(int(maze.state.game["distribution_mode"]))
    if mode is None:
        raise SteerError(
            f"The maze's state is in procgen distribution mode {maze.state.game['distribution_mode']}; "
            "episodes are played in 'easy' or 'hard' mode only."
        )
    return mode


def sample_episodes(
    policy: ImpalaPolicy,
    maze: Maze,
    n: int,
    seed: int,
    patches: Sequence[Patch] = (),
    envs: int = 128,
    prefill: MazeRenderer | None = None,
    batch_size: int = BATCH_SIZE,
    cache: bool = True,
) -> Episodes:
    """Play `n` episodes of `maze` from its state (mouse, facing, timeout) with actions sampled from the
    policy, `patches` hooked in.

    Episode i draws its uniforms from `numpy.random.default_rng([seed, i])`, one a step, so it is the same
    whatever `n` and `envs` are. `envs` environments play the episodes: one that finishes starts the next
    episode, since procgen steps every environment of a vectorised env, finished or not.

    `prefill` renders every (square, facing) frame of the maze and computes their probabilities in one batch
    before playing (small per-step batches are slow on a busy CPU). Probabilities are still looked up by the
    frame the environment shows; a frame that is not among those rendered is computed when it appears.

    Kept whole: one loop over procgen's vectorised environment, whose state (done flags,
    recorded frames, the hook) the steps share."""
    if n < 1:
        raise SteerError(f"n: {n} episodes; sample at least 1.")
    mode = _mode_of(maze)
    limit = int(maze.state.game["timeout"]) - int(maze.state.game["cur_time"])
    rngs = [np.random.default_rng([seed, i]) for i in range(n)]
    act = _CachedPolicy(policy, patches, batch_size, cache)
    if prefill is not None and cache:
        cheese = maze.cheese
        squares = [sq for sq in maze.open_squares() if sq != cheese]
        act.prefill(prefill.observe_many([s for f in (0, 1) for s in maze.with_mouse_states(squares, facing=f)]))
    computed_before = act.computed
    start = maze.to_bytes()
    pool = min(n, envs)
    env = _procgen_env(0, mode, num=pool)
    states: list[list[tuple[Square, int]]] = [[] for _ in range(n)]
    steps = np.zeros(n, dtype=np.int64)
    reached = np.zeros(n, dtype=bool)
    try:
        io = _EnvStates(env)
        playing = np.full(pool, -1)  # the episode each environment plays; -1: none left to play
        for slot in range(pool):
            io.set(slot, start)
            playing[slot] = slot
        next_episode = pool
        for slot, state in zip(range(pool), io.get(range(pool)), strict=True):
            states[slot].append(read_mouse(state))
        _, obs, _ = env.observe()
        while (playing >= 0).any():
            running = np.flatnonzero(playing >= 0)
            uniforms = np.array([rngs[playing[s]].random() for s in running])
            actions = np.full(pool, NOOP_ACTION, dtype=np.int32)
            actions[running] = sample_actions(act(obs["rgb"][running]), uniforms)
            env.act(actions)
            reward, obs, first = env.observe()
            restarted = []
            for slot in running:
                i = playing[slot]
                steps[i] += 1
                if not first[slot]:
                    if steps[i] >= limit:  # procgen ends every episode by its timeout; guard a changed game
                        raise SteerError(f"An episode ran past the {limit}-step timeout without procgen ending it.")
                    continue
                reached[i] = reward[slot] > 0
                if next_episode < n:
                    io.set(slot, start)
                    playing[slot] = next_episode
                    restarted.append(slot)
                    next_episode += 1
                else:
                    playing[slot] = -1
            still = [s for s in running if playing[s] >= 0]
            for slot, state in zip(still, io.get(still), strict=True):
                states[playing[slot]].append(read_mouse(state))
            if restarted:
                _, obs, _ = env.observe()  # the restarted environments' first frames
            alive = np.flatnonzero(playing >= 0)
            if next_episode >= n and 0 < len(alive) <= pool // 4:
                # Only stragglers are left: move them to a smaller env (a state carries the whole game, RNGs
                # included) so that finished environments stop costing a step each.
                saved = io.get(alive)
                env.close()
                env = _procgen_env(0, mode, num=len(alive))
                io = _EnvStates(env)
                for slot, state in enumerate(saved):
                    io.set(slot, state)
                playing, pool = playing[alive], len(alive)
                _, obs, _ = env.observe()
    finally:
        env.close()
    episodes = tuple(Episode(tuple(states[i]), int(steps[i]), bool(reached[i]), maze.cheese) for i in range(n))
    return Episodes(maze, seed, episodes, frames_seen=len(act.seen), frames_computed=act.computed - computed_before)
