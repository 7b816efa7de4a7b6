"""The procgen maze environment, used for two things only: the initial state of a level and rendering.

Every observation the policy sees comes from procgen itself: a (possibly edited) state goes in through
`set_state`, which re-renders the 64x64 frame, and the frame is read back with `observe`. Environments are
made with `num_threads=0` (procgen's worker threads only add start-up cost here) and reused for every state.
Rendering a maze's squares is split over a few environments on as many threads: procgen renders in C++
without the GIL, a frame depends only on the state it is given, and two threads render twice as fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from steer.errors import SteerError
from steer.maze.layout import Maze

Mode = Literal["easy", "hard"]
MODES: tuple[str, ...] = ("easy", "hard")
MAX_SEED = 2**31 - 1
# Fewer states than this per thread are rendered on one thread: handing work to a thread costs more.
_MIN_STATES_PER_THREAD = 16


def _procgen_env(seed: int, mode: str, num: int = 1) -> Any:  # procgen ships no type hints
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        # procgen imports gym, which prints a deprecation notice on import; it is not actionable for users.
        warnings.simplefilter("ignore")
        from procgen import ProcgenGym3Env

    env = ProcgenGym3Env(
        num=num, env_name="maze", num_levels=1, start_level=seed, distribution_mode=mode, num_threads=0
    )
    # A deadlock guard. Each gym3 env binds its C functions lazily, under one lock shared by all envs that is
    # not re-entrant, and an env that was never closed looks up `libenv_close` in its finalizer. If the
    # garbage collector finalizes such an env while another env is binding a function (it allocates, so the
    # collector can run), the finalizer waits on a lock its own thread holds: the process hangs for good.
    # Binding `libenv_close` now, while no lock is held, keeps every later finalizer off that lock.
    getattr(getattr(env, "_c_lib", None), "libenv_close", None)
    return env


def check_seed(seed: object, where: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) <= MAX_SEED:
        raise SteerError(
            f"{where}: {seed!r} is not a valid level seed. Seeds are integers from 0 to {MAX_SEED} "
            "(procgen's level seeds)."
        )
    return int(seed)


class MazeRenderer:
    """Makes level states for seeds and renders observations of edited states."""

    def __init__(self, mode: Mode, threads: int | None = None) -> None:
        if mode not in MODES:
            raise SteerError(f"distribution_mode: {mode!r} is not supported; use 'easy' or 'hard'.")
        self.mode = mode
        self.threads = max(1, threads if threads is not None else min(4, os.cpu_count() or 1))
        self._env = _procgen_env(0, mode)
        self._envs = [self._env]  # one per rendering thread, made when a render first needs them
        self._pool: ThreadPoolExecutor | None = None

    def level(self, seed: int) -> Maze:
        """The maze procgen generates for `seed`, with the mouse at its start square."""
        env = _procgen_env(check_seed(seed), self.mode)
        try:
            return Maze.from_bytes(env.callmethod("get_state")[0])
        finally:
            env.close()  # its level is read; free the C game now rather than whenever the collector runs

    def observe(self, state: bytes) -> np.ndarray:
        """The 64x64x3 uint8 frame procgen renders for `state`."""
        return self.observe_many([state])[0]

    def observe_many(self, states: Sequence[bytes]) -> np.ndarray:
        """Frames for several states, stacked as (N, 64, 64, 3) uint8."""
        frames = np.empty((len(states), 64, 64, 3), dtype=np.uint8)
        n = min(self.threads, len(states) // _MIN_STATES_PER_THREAD)
        if n <= 1:
            _render_into(self._env, states, frames)
            return frames
        while len(self._envs) < n:
            self._envs.append(_procgen_env(0, self.mode))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="steer-render")
        bounds = np.linspace(0, len(states), n + 1).astype(int)
        jobs = [
            self._pool.submit(_render_into, self._envs[i], states[lo:hi], frames[lo:hi])
            for i, (lo, hi) in enumerate(pairwise(bounds))
        ]
        for job in jobs:
            job.result()  # re-raises a render error here
        return frames

    def observe_maze(self, maze: Maze) -> np.ndarray:
        return self.observe(maze.to_bytes())

    def observe_positions(self, maze: Maze, squares: Sequence[tuple[int, int]]) -> np.ndarray:
        """Frames with the mouse on each of `squares`; the state is serialised once, only the mouse moves."""
        return self.observe_many(maze.with_mouse_states(squares))


def _render_into(env: Any, states: Sequence[bytes], out: np.ndarray) -> None:
    for i, state in enumerate(states):
        env.callmethod("set_state", [state])
        _, obs, _ = env.observe()
        out[i] = obs["rgb"][0]
