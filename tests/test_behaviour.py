"""Exact behaviour (steer.analysis.chain) against the real game: transitions, facing, timeout, and sampled episodes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.stats
import torch
from _harness import LAYER

from steer.analysis.chain import MOVES, behaviour, build_chain, horizon_of, maze_behaviours, next_state
from steer.analysis.episodes import sample_episodes
from steer.errors import SteerError
from steer.maze.env import _procgen_env
from steer.maze.layout import CHEESE, EMPTY, WALL, Maze, read_mouse
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import FacingField, FieldInputs, facing_field, facing_inputs, vector_field

# Small easy levels whose patched episodes are short enough to sample 400 times in a test (most patched
# episodes run to the timeout); patched, 0 and 14 visit the top-right square with P = 0.19 and 0.47.
# benchmarks/behaviour_check.py runs the same check on more and larger mazes, easy and hard.
EXACT_SEEDS = [0, 14, 25]
N_EPISODES = 400
SLACK = 1e-9  # exact values carry float64 rounding; an interval ending exactly at 0 or 1 must still hold them


def forced(action: int) -> list[tuple[str, torch.Tensor, float]]:
    """A patch that makes the real policy take `action` with probability 1 (float32 softmax underflows)."""
    logits = torch.zeros(15)
    logits[action] = 1000.0
    return [("fc_policy", logits, 1.0)]


def one_hot(maze: Maze, by_facing: tuple[int, int]) -> FacingField:
    """A hand-made policy: action by_facing[f] with certainty in facing f, on every square."""
    squares = tuple(sq for sq in maze.open_squares() if sq != maze.cheese)
    probs = np.zeros((2, len(squares), 15), np.float32)
    for facing, action in enumerate(by_facing):
        probs[facing, :, action] = 1.0
    return FacingField(maze, squares, probs)


def corridor(level: Maze, k: int, cheese: bool = True) -> Maze:
    """Only the k + 1 squares right of the level's start are open; the cheese at the far end."""
    r, c = level.start_square
    grid = np.full_like(level.grid, WALL)
    grid[r, c : c + k + 1] = EMPTY
    if cheese:
        grid[r, c + k] = CHEESE
    return replace(level, grid=grid, mouse=(r, c))


# -- facing ------------------------------------------------------------------------------------------------


def test_facing_starts_at_zero_and_changes_the_observation(renderer) -> None:
    for seed in (1, 2, 28):
        maze = renderer.level(seed)
        assert maze.facing == 0
        assert read_mouse(maze.to_bytes()) == (maze.start_square, 0)
        squares = [sq for sq in maze.open_squares() if sq != maze.cheese]
        left = renderer.observe_many(maze.with_mouse_states(squares, facing=0))
        right = renderer.observe_many(maze.with_mouse_states(squares, facing=1))
        # The sprite is 2-4 pixels wide: on a few squares, depending on how it falls on the pixel grid, the two
        # facings render alike. On most they differ.
        assert (left != right).reshape(len(squares), -1).any(axis=1).mean() > 0.6
        np.testing.assert_array_equal(left, renderer.observe_many(maze.with_mouse_states(squares)))
        flipped = maze.with_facing(1)
        assert flipped.facing == 1 and read_mouse(flipped.to_bytes()) == (maze.start_square, 1)
        assert Maze.from_bytes(flipped.to_bytes()).facing == 1
    with pytest.raises(SteerError, match="facing"):
        maze.with_facing(2)


def test_facing_zero_is_what_vector_fields_show(easy, policy) -> None:
    maze = easy.level(2)
    both = facing_field(policy, facing_inputs(easy, maze))
    plain = vector_field(policy, FieldInputs.render(easy, maze))
    assert both.positions == plain.positions
    np.testing.assert_allclose(both.probs[0], plain.probs, rtol=0, atol=1e-6)
    assert np.abs(both.probs[1] - both.probs[0]).max() > 0.05  # the facing matters to this policy


# -- transitions against the real game ---------------------------------------------------------------------


def test_every_action_moves_and_turns_the_mouse_as_the_game_does(easy) -> None:
    """From every square in both facings, each of the 15 actions lands where procgen lands, blocked or not,
    and the frame procgen then shows is the one rendered for that (square, facing)."""
    maze = easy.level(28)
    squares = [sq for sq in maze.open_squares() if sq != maze.cheese]
    starts = [(sq, f) for f in (0, 1) for sq in squares]
    states = [s for f in (0, 1) for s in maze.with_mouse_states(squares, facing=f)]
    chains = {a: build_chain(one_hot(maze, (a, a))) for a in range(15)}
    env = _procgen_env(0, "easy", num=len(states))
    blocked = moved = 0
    try:
        for action in range(15):
            env.callmethod("set_state", states)
            env.act(np.full(len(states), action, dtype=np.int32))
            reward, obs, first = env.observe()
            chain = chains[action]
            expected = []
            for k, ((sq, facing), got) in enumerate(zip(starts, env.callmethod("get_state"), strict=True)):
                want = next_state(maze, sq, facing, action)
                s = chain.state(sq, facing)
                if want[0] == maze.cheese:
                    assert first[k] and reward[k] > 0
                    assert chain.to_cheese[s] == 1.0
                    expected.append(None)
                    continue
                assert not first[k]
                assert read_mouse(got) == want, (action, sq, facing)
                row = chain.transient.getrow(s)
                assert list(row.indices) == [chain.state(*want)] and row.data[0] == pytest.approx(1.0)
                expected.append(want)
                blocked += want[0] == sq and action not in MOVES[4][0]
                moved += want[0] != sq
            keep = [k for k, w in enumerate(expected) if w is not None]
            frames = np.stack(
                [easy.observe(maze.with_mouse_states([expected[k][0]], facing=expected[k][1])[0]) for k in keep]
            )
            np.testing.assert_array_equal(obs["rgb"][keep], frames)
    finally:
        env.close()
    assert blocked > 100 and moved > 100  # both kinds of move were exercised
    assert sorted(a for actions, _, _ in MOVES for a in actions) == list(range(15))


# -- hand-built chains -------------------------------------------------------------------------------------


def test_always_right_along_a_corridor_takes_exactly_k_steps(easy, policy) -> None:
    k = 6
    maze = corridor(easy.level(28), k)
    b = behaviour(one_hot(maze, (7, 7)))
    assert b.p_cheese == 1.0 and b.steps_to_cheese == k and b.mean_steps == k
    r, c = maze.start_square
    assert b.greedy.end == "cheese" and b.greedy.squares == tuple((r, c + i) for i in range(k + 1))
    np.testing.assert_array_equal(b.occupancy[r, c : c + k], np.ones(k))
    assert b.occupancy.sum() == k
    # The real policy forced to RIGHT, in the real game.
    episodes = sample_episodes(policy, maze, 3, seed=0, patches=forced(7))
    assert [(e.steps, e.reached_cheese) for e in episodes.episodes] == [(k, True)] * 3
    assert episodes.episodes[0].squares == b.greedy.squares
    assert [f for _, f in episodes.episodes[0].states] == [0] + [1] * (k - 1)
    exact = behaviour(facing_field(policy, facing_inputs(easy, maze), forced(7)))
    assert exact.steps_to_cheese == pytest.approx(k) and exact.p_cheese == pytest.approx(1.0)


def test_a_policy_that_never_moves_times_out_on_its_start_square(easy, policy) -> None:
    maze = easy.level(2)
    assert horizon_of(maze) == 500
    b = behaviour(one_hot(maze, (4, 4)), targets={"start": maze.start_square, "cheese": maze.cheese})
    assert b.p_cheese == 0.0 and b.steps_to_cheese is None and b.mean_steps == 500
    assert b.occupancy[maze.start_square] == 500 and b.occupancy.sum() == 500
    assert b.p_targets == {"start": 1.0, "cheese": 0.0} and b.p_top_right == 0.0
    assert b.greedy.end == "loop" and b.greedy.squares == (maze.start_square, maze.start_square)
    # The real game ends the episode after exactly 500 no-ops, without reward.
    episodes = sample_episodes(policy, maze, 2, seed=0, patches=forced(4))
    for e in episodes.episodes:
        assert (e.steps, e.reached_cheese) == (500, False)
        assert set(e.squares) == {maze.start_square} and len(e.squares) == 500


def test_facing_dependent_policy_oscillates(easy) -> None:
    """RIGHT in facing 0 and LEFT in facing 1 shuttles between two squares: 250 visits each."""
    maze = corridor(easy.level(28), 4)
    b = behaviour(one_hot(maze, (7, 1)))
    r, c = maze.start_square
    assert b.occupancy[r, c] == 250 and b.occupancy[r, c + 1] == 250 and b.p_cheese == 0
    assert b.greedy.end == "loop" and b.greedy.squares == ((r, c), (r, c + 1), (r, c))
    # Starting in facing 1 it moves LEFT first: blocked by the wall, it turns to facing 0 and then goes right.
    b1 = behaviour(one_hot(maze, (7, 1)), start_facing=1)
    assert b1.occupancy[r, c] == 251 and b1.occupancy[r, c + 1] == 249


def test_geometric_success_matches_its_closed_form(easy) -> None:
    q, horizon = 0.01, 500
    maze = corridor(easy.level(28), 1)
    field = one_hot(maze, (4, 4))
    field.probs[..., 4] = 1 - q
    field.probs[..., 7] = q
    for h in (horizon, 10, 0):
        b = behaviour(field, horizon=h)
        t = np.arange(1, h + 1)
        pmf = q * (1 - q) ** (t - 1)
        assert b.p_cheese == pytest.approx(pmf.sum(), rel=1e-6, abs=1e-12)
        if h:
            assert b.steps_to_cheese == pytest.approx((t * pmf).sum() / pmf.sum(), rel=1e-6)
            assert b.mean_steps == pytest.approx(((1 - q) ** np.arange(h)).sum(), rel=1e-6)
        else:
            assert b.steps_to_cheese is None and b.mean_steps == 0


def test_targets_and_a_maze_without_cheese(easy, policy) -> None:
    maze = easy.level(0).without_cheese()  # a 3x3 maze
    inputs = facing_inputs(easy, maze)
    wall = next(tuple(int(v) for v in sq) for sq in np.argwhere(maze.grid == WALL))
    b = behaviour(facing_field(policy, inputs), targets={"start": maze.start_square, "wall": wall})
    assert b.cheese is None and b.p_cheese == 0.0 and b.steps_to_cheese is None
    assert b.p_targets == {"start": 1.0, "wall": 0.0}
    assert b.mean_steps == pytest.approx(500) and b.occupancy.sum() == pytest.approx(500)
    json = b.to_json()
    assert json["cheese"] is None and json["steps_to_cheese"] is None and len(json["occupancy"]) == maze.world_dim
    with pytest.raises(SteerError, match="outside"):
        behaviour(facing_field(policy, inputs), targets={"far": (99, 0)})


# -- sampled episodes agree with the exact values ----------------------------------------------------------


def _agree(exact: float, successes: int, n: int) -> bool:
    ci = scipy.stats.binomtest(successes, n).proportion_ci(0.99)
    return ci.low - SLACK <= exact <= ci.high + SLACK


def _mean_agrees(exact: float, samples: np.ndarray, horizon: int = 500) -> bool:
    if samples.std() == 0:
        # All samples equal v: no t-interval. P(an episode differs from v) is at most the binomial bound p for
        # 0 of n, and episodes last 1..horizon steps, so the mean lies in [v - p (v - 1), v + p (horizon - v)].
        p = scipy.stats.binomtest(0, len(samples)).proportion_ci(0.99).high
        v = samples[0]
        return v - p * (v - 1) - SLACK <= exact <= v + p * (horizon - v) + SLACK
    ci = scipy.stats.ttest_1samp(samples, exact).confidence_interval(0.99)
    return ci.low - SLACK <= exact <= ci.high + SLACK


@pytest.mark.parametrize("seed", EXACT_SEEDS)
def test_sampled_episodes_agree_with_the_exact_chain(easy, policy, seed: int) -> None:
    maze = easy.level(seed)
    vec = compute_vector(policy, easy, maze, PairSpec("cheese"), LAYER)
    patch_sets = [[], [(vec.layer, vec.tensor, -1.0)]]
    exact = maze_behaviours(policy, easy, maze, patch_sets)
    for b, patches in zip(exact, patch_sets, strict=True):
        eps = sample_episodes(policy, maze, N_EPISODES, seed=1234, patches=patches, prefill=easy)
        assert eps.frames_computed == 0  # every frame the game showed is a rendered (square, facing) frame
        reached = eps.reached
        assert _agree(b.p_cheese, int(reached.sum()), eps.n), (seed, bool(patches), b.p_cheese, eps.p_cheese)
        tr = sum(e.visited(maze.top_right_square) for e in eps.episodes)
        assert _agree(b.p_top_right, tr, eps.n), (seed, bool(patches), b.p_top_right, eps.p_top_right)
        if reached.sum() > 1:
            assert _mean_agrees(b.steps_to_cheese, eps.steps[reached], b.horizon), (
                seed,
                b.steps_to_cheese,
                eps.steps_to_cheese,
            )
        assert _mean_agrees(b.mean_steps, eps.steps.astype(float), b.horizon), (seed, b.mean_steps, eps.mean_steps)


def test_sampling_is_deterministic_per_episode(easy, policy) -> None:
    maze = easy.level(0)
    vec = compute_vector(policy, easy, maze, PairSpec("cheese"), LAYER)
    patches = [(vec.layer, vec.tensor, -1.0)]  # a random walk: episodes differ from seed to seed
    a = sample_episodes(policy, maze, 6, seed=5, patches=patches, prefill=easy)
    b = sample_episodes(policy, maze, 6, seed=5, patches=patches, envs=2)  # other batching, no prefill: the same
    c = sample_episodes(policy, maze, 6, seed=6, patches=patches, prefill=easy)
    assert a.episodes == b.episodes
    assert a.episodes != c.episodes
    assert a.to_json()["n"] == 6 and len(a.to_json(with_episodes=True)["episodes"]) == 6


# -- pictures ----------------------------------------------------------------------------------------------


def test_episode_gif_is_small_and_capped(easy, tmp_path) -> None:
    from PIL import Image

    from steer.analysis.episodes import Episode
    from steer.report.behaviour_figs import episode_gif

    maze = easy.level(1)
    # A 100-step walk back and forth along the greedy path of a hand-made policy, and a short one.
    path = behaviour(one_hot(maze, (5, 5))).greedy.squares
    bounce = [*path, *path[::-1]]
    walk = [bounce[i % len(bounce)] for i in range(100)]
    long = Episode(tuple((sq, 0) for sq in walk), 100, False, maze.cheese)
    short = Episode(tuple((sq, 0) for sq in walk[:10]), 10, False, maze.cheese)
    size = episode_gif(tmp_path / "a.gif", maze, [("original", short), ("patched", long)], max_frames=60)
    assert size == (tmp_path / "a.gif").stat().st_size < 300_000
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 60 and gif.is_animated


def test_occupancy_figure_draws_three_panels(easy) -> None:
    from steer.report.behaviour_figs import occupancy_figure

    maze = corridor(easy.level(28), 5)
    right, stay = behaviour(one_hot(maze, (7, 7))), behaviour(one_hot(maze, (4, 4)))
    img = occupancy_figure(maze, right, stay, title="right vs stay")
    assert img.mode == "RGB" and img.width > 3 * 100 and img.height > 100
