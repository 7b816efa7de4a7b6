"""The maze state codec and edits, on real procgen states in both modes."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

from steer.errors import SteerError
from steer.maze.env import _procgen_env
from steer.maze.layout import CHEESE, EMPTY, WALL, Maze

SEEDS = [0, 1, 2, 5, 28, 100, 4321]


@pytest.mark.parametrize("mode,world", [("easy", 15), ("hard", 25)])
def test_round_trip_is_byte_identical_and_sizes_come_from_the_state(mode: str, world: int) -> None:
    for seed in SEEDS:
        raw = _procgen_env(seed, mode).callmethod("get_state")[0]
        maze = Maze.from_bytes(raw)
        assert maze.to_bytes() == raw
        assert maze.world_dim == world and maze.grid.shape == (world, world)
        assert 3 <= maze.maze_dim <= world and maze.maze_dim % 2 == 1
        lo, hi = maze.inner_bounds
        assert hi - lo + 1 == maze.maze_dim
        # Everything outside the inner maze is wall; the mouse starts at the inner bottom-left.
        outside = np.ones_like(maze.grid, dtype=bool)
        outside[lo : hi + 1, lo : hi + 1] = False
        assert (maze.grid[outside] == WALL).all()
        assert maze.mouse == maze.start_square == (lo, lo)
        assert maze.cheese is not None and maze.grid[maze.cheese] == CHEESE


def test_truncated_or_foreign_state_is_a_clear_error() -> None:
    raw = _procgen_env(0, "easy").callmethod("get_state")[0]
    with pytest.raises(SteerError, match="truncated"):
        Maze.from_bytes(raw[:-10])
    with pytest.raises(SteerError, match="0xCAFECAFE"):
        Maze.from_bytes(raw + b"\0\0\0\0")


def test_edits_survive_set_state_and_get_state(renderer) -> None:
    """procgen accepts every edited state and hands back exactly what was set."""
    for seed in (1, 2, 28):
        maze = renderer.level(seed)
        squares = maze.open_squares()
        target = squares[len(squares) // 2]
        edited = maze.without_cheese().with_mouse(target).with_cheese(maze.start_square)
        env = _procgen_env(seed, renderer.mode)
        env.callmethod("set_state", [edited.to_bytes()])
        back = Maze.from_bytes(env.callmethod("get_state")[0])
        assert back.mouse == target
        assert back.cheese == maze.start_square
        assert (back.grid == edited.grid).all()


def test_moving_the_mouse_renders_like_walking_there(easy) -> None:
    """The frame for an edited mouse position equals the frame after procgen moves the mouse itself."""
    maze = easy.level(28)
    start = maze.start_square
    above = (start[0] + 1, start[1])
    assert maze.is_open(above)
    env = _procgen_env(28, "easy")
    env.act(np.array([5]))  # UP
    _, obs, _ = env.observe()
    walked = Maze.from_bytes(env.callmethod("get_state")[0])
    assert walked.mouse == above
    assert (easy.observe_maze(maze.with_mouse(above)) == obs["rgb"][0]).all()


def test_removing_the_cheese_changes_only_the_cheese_pixels(easy) -> None:
    maze = easy.level(28)
    with_cheese, without = easy.observe_maze(maze), easy.observe_maze(maze.without_cheese())
    changed = np.argwhere((with_cheese != without).any(axis=-1))
    assert len(changed) > 0
    # 64 px show 15 cells: the changed pixels lie inside the cheese cell (row 0 at the bottom of the world).
    row, col = maze.cheese
    px = 64 / maze.world_dim
    ys, xs = changed[:, 0], changed[:, 1]
    assert xs.min() >= int(col * px) - 1 and xs.max() <= int((col + 1) * px) + 1
    top = 64 - (row + 1) * px
    assert ys.min() >= int(top) - 1 and ys.max() <= int(top + px) + 1


def test_top_right_path_connects_start_to_the_world_corner(renderer) -> None:
    for seed in range(40):
        maze = renderer.level(seed)
        if maze.maze_dim == maze.world_dim:
            assert maze.top_right_path() == []
            with pytest.raises(SteerError, match="no margin"):
                maze.with_top_right_path()
            continue
        opened = maze.with_top_right_path()
        corner = (maze.world_dim - 1, maze.world_dim - 1)
        path = opened.shortest_path(maze.start_square, corner)
        assert path is not None and path[-1] == corner
        newly_open = (opened.grid != WALL) & (maze.grid == WALL)
        expected = maze.world_dim - 1 - maze.top_right_square[0] + maze.world_dim - 1 - maze.top_right_square[1]
        assert newly_open.sum() == expected
        assert (opened.grid[newly_open] == EMPTY).all()


def test_decision_square_is_where_the_paths_to_cheese_and_corner_split(renderer) -> None:
    found = 0
    for seed in range(30):
        maze = renderer.level(seed)
        ds = maze.decision_square()
        to_cheese = maze.shortest_path(maze.start_square, maze.cheese)
        to_corner = maze.shortest_path(maze.start_square, maze.top_right_square)
        if ds is None:
            assert maze.cheese in to_corner or maze.top_right_square in to_cheese
            continue
        found += 1
        i = to_cheese.index(ds)
        assert to_corner[: i + 1] == to_cheese[: i + 1]
        assert to_corner[i + 1] != to_cheese[i + 1]
    assert found >= 5


def test_edit_errors_name_the_square() -> None:
    maze = Maze.from_bytes(_procgen_env(2, "easy").callmethod("get_state")[0])
    with pytest.raises(SteerError, match=r"\[0, 0\].*wall"):
        maze.with_mouse((0, 0))
    with pytest.raises(SteerError, match="outside the 15x15 world"):
        maze.with_cheese((15, 3))


def test_fast_mouse_states_equal_full_serialisation(renderer) -> None:
    maze = renderer.level(5)
    squares = maze.open_squares()
    fast = maze.with_mouse_states(squares)
    assert fast == [maze.with_mouse(sq).to_bytes() for sq in squares]
    with pytest.raises(SteerError, match="wall"):
        maze.with_mouse_states([(0, 0)])


def test_a_dropped_environment_is_finalized_without_cffis_binding_lock() -> None:
    """Regression: the collector finalizing an env while another env held gym3's binding lock hung the suite.

    Another thread holds the lock for 5 s; finalizing an env must not wait for it.
    """
    env = _procgen_env(3, "easy")
    env.callmethod("get_state")
    lock = env._ffi._lock
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    start = time.perf_counter()
    del env
    gc.collect()
    waited = time.perf_counter() - start
    release.set()
    holder.join()
    assert waited < 2, f"finalizing a procgen env waited {waited:.1f} s for cffi's lock"


def test_rendering_on_several_threads_gives_the_same_frames_in_order() -> None:
    from steer.maze.env import MazeRenderer

    one, three = MazeRenderer("hard", threads=1), MazeRenderer("hard", threads=3)
    maze = one.level(100)  # a full 25x25 maze: 337 open squares, split over three threads
    squares = maze.open_squares()
    frames = three.observe_positions(maze, squares)
    assert len(three._envs) == 3
    np.testing.assert_array_equal(frames, one.observe_positions(maze, squares))
    assert len({f.tobytes() for f in frames}) == len(squares)  # every square drew the mouse somewhere else
