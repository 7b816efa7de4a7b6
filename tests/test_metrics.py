"""The metric registry on hand-made mazes and hand-written action distributions (no checkpoint, no procgen).

Every value is computed by hand in the test (the arithmetic is in a comment), so a metric that drifts —
TV without its ½, a step into a wall counted as progress, a decision square off by one, entropy in bits —
fails here. `test_every_metric_has_a_value_test` fails when a metric is added to `METRICS` without a test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from steer.analysis.metrics import (
    FIELD_METRICS,
    MAZE_KEYS,
    METRICS,
    PAIRED,
    blocked_moves,
    delta,
    describe,
    maze_metrics,
    mean_entropy,
    mean_tv,
    p_step_at,
    p_toward,
    patched_value,
    step_toward,
    summarize,
    unpatched_metrics,
    wall_mass,
)
from steer.maze.layout import CHEESE, EMPTY, WALL, Maze, MazeState
from steer.net.vfield import DOWN, LEFT, NOOP, RIGHT, UP, VectorField

# -- hand-made mazes -------------------------------------------------------------------------------------

CELLS = {"#": WALL, ".": EMPTY, "C": CHEESE}


def make_maze(picture: str, maze_dim: int) -> Maze:
    """A maze from a picture drawn top row first (row 0 is the bottom), mouse on the start square."""
    rows = picture.split()
    world = len(rows)
    grid = np.array([[CELLS[ch] for ch in row] for row in reversed(rows)], dtype=np.int32)
    grid.setflags(write=False)
    state = MazeState(
        game={}, entities=(), basic={}, grid_w=world, grid_h=world,
        grid=tuple(int(v) for v in grid.ravel()), maze_dim=maze_dim, world_dim=world,
    )  # fmt: skip
    margin = (world - maze_dim) // 2
    return Maze(state=state, grid=grid, mouse=(margin, margin))


# T junction: start (1,1) → (1,2) → junction (1,3); right to the cheese at (1,5), up to the top-right (5,5).
T_MAZE = make_maze(
    """
    #######
    ###...#
    ###.###
    ###.###
    ###.###
    #....C#
    #######
    """,
    maze_dim=5,
)

# Corridor: (1,1) → (1,2) → cheese (1,3). (3,1) is an open pocket no other square reaches. The top-right
# square (3,3) is a wall, so there is no path to it and no decision square.
CORRIDOR = make_maze(
    """
    #####
    #.###
    #####
    #..C#
    #####
    """,
    maze_dim=3,
)

# -- hand-written fields ---------------------------------------------------------------------------------

GROUPS = {"L": LEFT, "D": DOWN, "U": UP, "R": RIGHT, "N": NOOP}


def make_field(maze: Maze, dists: dict) -> VectorField:
    """A field on the squares of `dists`: {square: {group or action index: mass}}, a group's mass split evenly."""
    probs = np.zeros((len(dists), 15), np.float32)
    for i, dist in enumerate(dists.values()):
        for key, mass in dist.items():
            actions = list(GROUPS[key]) if isinstance(key, str) else [key]
            probs[i, actions] += mass / len(actions)
    assert np.allclose(probs.sum(axis=-1), 1.0)
    return VectorField(maze, tuple(dists), probs)


UNIFORM = {"L": 3 / 15, "D": 1 / 15, "U": 1 / 15, "R": 3 / 15, "N": 7 / 15}  # 1/15 on each of the 15 actions

# Metric names whose values a test below checks by hand; compared with the registry at the end.
COVERED: set[str] = set()


def covers(*names):
    def mark(test):
        COVERED.update(names)
        return test

    return mark


def approx(value):
    return pytest.approx(value, abs=1e-6)


# -- the mazes themselves --------------------------------------------------------------------------------


def test_t_maze_geometry_and_decision_square():
    """The hand-made maze is what the pictures say, and its decision square is exactly the junction."""
    assert T_MAZE.start_square == (1, 1)
    assert T_MAZE.top_right_square == (5, 5)
    assert T_MAZE.cheese == (1, 5)
    # to cheese: (1,1) (1,2) (1,3) (1,4) (1,5); to top-right: (1,1) (1,2) (1,3) (2,3) ... → last shared (1,3).
    assert T_MAZE.decision_square() == (1, 3)
    # Corridor: no path to the walled top-right square → no decision square. No cheese → none either.
    assert CORRIDOR.decision_square() is None
    assert T_MAZE.without_cheese().decision_square() is None


def test_step_toward_is_the_first_step_of_the_shortest_path():
    assert step_toward(T_MAZE, (1, 3), (1, 5)) == (0, 1)  # right, toward the cheese
    assert step_toward(T_MAZE, (1, 3), (5, 5)) == (1, 0)  # up: row 0 is the bottom
    assert step_toward(T_MAZE, (2, 3), (1, 5)) == (-1, 0)  # down, back to the junction
    assert step_toward(T_MAZE, (1, 1), (1, 1)) is None  # already there
    assert step_toward(CORRIDOR, (1, 1), (3, 1)) is None  # the pocket is unreachable


# -- the metrics, each against a hand-computed value -----------------------------------------------------


@covers("p_cheese_ds", "p_top_right_ds")
def test_decision_square_metrics_read_the_decision_square():
    """Each neighbour of the junction has its own distribution, so reading one square off gives another number."""
    dists = {
        (1, 1): {"R": 1.0},
        (1, 2): {"R": 0.9, "L": 0.1},  # one square early: cheese 0.9, top-right 0.9
        (1, 3): {"R": 0.5, "U": 0.3, "L": 0.1, "D": 0.1},  # the decision square
        (1, 4): {"R": 0.2, "L": 0.8},  # one square late: cheese 0.2, top-right (step left) 0.8
        (2, 3): {"U": 0.6, "D": 0.4},  # up the other branch: cheese (down) 0.4, top-right 0.6
    }
    original = make_field(T_MAZE, dists)
    patched = make_field(T_MAZE, {**dists, (1, 3): {"R": 0.25, "U": 0.75}})
    # At (1,3): cheese is a step right (0.5 → 0.25), the top-right a step up (0.3 → 0.75).
    assert METRICS["p_cheese_ds"].compute(original, patched) == {"original": approx(0.5), "patched": approx(0.25)}
    assert METRICS["p_top_right_ds"].compute(original, patched) == {"original": approx(0.3), "patched": approx(0.75)}
    # No decision square (no cheese), or a field that does not cover it: undefined.
    no_cheese = VectorField(T_MAZE.without_cheese(), original.positions, original.probs)
    assert METRICS["p_cheese_ds"].compute(no_cheese, no_cheese) == {"original": None, "patched": None}
    assert METRICS["p_top_right_ds"].compute(no_cheese, no_cheese) == {"original": None, "patched": None}
    assert p_step_at(make_field(T_MAZE, {(1, 1): {"R": 1.0}}), (1, 3), (1, 5)) is None


@covers("p_toward_cheese")
def test_p_toward_gives_no_credit_for_walls_or_steps_away():
    field = make_field(
        CORRIDOR,
        {
            (1, 1): {"L": 1.0},  # all mass into the wall at (1,0): 0
            (1, 2): {"R": 0.25, "L": 0.5, "U": 0.25},  # right onto the cheese 0.25; left is away, up a wall
            (3, 1): {"R": 1.0},  # the cheese cannot be reached from here: left out of the mean
        },
    )
    patched = make_field(CORRIDOR, {(1, 1): {"R": 1.0}, (1, 2): {"R": 1.0}, (3, 1): {"R": 1.0}})
    # original: (0 + 0.25) / 2 = 0.125; patched: (1 + 1) / 2 = 1.
    assert METRICS["p_toward_cheese"].compute(field, patched) == {"original": approx(0.125), "patched": approx(1.0)}
    # The top-right square is a wall: no square reaches it → undefined.
    assert METRICS["p_toward_top_right"].compute(field, patched) == {"original": None, "patched": None}
    assert p_toward(field, None) is None


@covers("p_toward_top_right", "p_toward_cheese")
def test_p_toward_on_the_t_maze_leaves_the_target_out():
    field = make_field(
        T_MAZE,
        {
            (5, 5): {"L": 1.0},  # the top-right itself; 8 steps from the cheese, left to (5,4) is 7
            (1, 4): {"L": 0.6, "R": 0.4},  # top-right: left 0.6 (right is away); cheese: right 0.4
            (1, 3): {"R": 0.5, "U": 0.3, "L": 0.1, "D": 0.1},  # top-right: up 0.3; cheese: right 0.5; down: wall
            (1, 1): {"D": 1.0},  # into the wall: 0 for both
        },
    )
    # top-right: (5,5) is the target, left out → (0.6 + 0.3 + 0) / 3 = 0.3
    # cheese:    (1 + 0.4 + 0.5 + 0) / 4 = 0.475
    assert METRICS["p_toward_top_right"].compute(field, field) == {"original": approx(0.3), "patched": approx(0.3)}
    assert METRICS["p_toward_cheese"].compute(field, field) == {"original": approx(0.475), "patched": approx(0.475)}


@covers("mean_tv")
def test_mean_tv_is_half_the_l1_distance_over_the_15_actions():
    original = make_field(CORRIDOR, {(1, 1): {"R": 1.0}, (1, 2): {6: 1.0}})
    patched = make_field(CORRIDOR, {(1, 1): {"R": 0.75, "L": 0.25}, (1, 2): {8: 1.0}})
    # (1,1): ½ (3·|1/3 − 1/4| + 3·|0 − 1/12|) = ½ (1/4 + 1/4) = 0.25
    # (1,2): both move right, but on different actions: ½ (1 + 1) = 1.0 (TV is over actions, not directions)
    # mean: (0.25 + 1.0) / 2 = 0.625
    assert METRICS["mean_tv"].compute(original, patched) == approx(0.625)
    one = [make_field(CORRIDOR, {(1, 2): d}) for d in ({"R": 1.0}, {"R": 0.75, "L": 0.25}, {6: 1.0}, {8: 1.0})]
    assert mean_tv(one[0], one[1]) == approx(0.25)
    assert mean_tv(one[2], one[3]) == approx(1.0)
    assert METRICS["mean_tv"].unpatched(original) == 0.0


@covers("entropy")
def test_entropy_is_in_nats():
    original = make_field(CORRIDOR, {(1, 1): UNIFORM, (1, 2): {"U": 1.0}})
    patched = make_field(CORRIDOR, {(1, 1): {"U": 0.5, "D": 0.5}, (1, 2): {4: 1.0}})
    # original: (ln 15 + 0) / 2 ≈ 1.354; patched: (ln 2 + 0) / 2 ≈ 0.347
    assert METRICS["entropy"].compute(original, patched) == {
        "original": approx(math.log(15) / 2),
        "patched": approx(math.log(2) / 2),
    }
    assert mean_entropy(make_field(CORRIDOR, {(1, 1): UNIFORM})) == approx(math.log(15))  # ≈ 2.708, not 3.907 bits
    assert mean_entropy(make_field(CORRIDOR, {(1, 1): {0: 1.0}})) == approx(0.0)
    assert mean_entropy(VectorField(CORRIDOR, (), np.zeros((0, 15), np.float32))) is None


@covers("wall_mass")
def test_wall_mass_counts_only_moves_into_walls():
    original = make_field(
        CORRIDOR,
        {
            (1, 1): {"L": 0.5, "D": 0.25, "R": 0.25},  # left and down are walls: 0.75
            (1, 2): {"R": 0.5, "U": 0.2, "N": 0.3},  # right (the cheese) is open, up a wall, no-ops no move: 0.2
            (3, 1): {"U": 1.0},  # walled in on all sides: 1.0
        },
    )
    patched = make_field(CORRIDOR, {(1, 1): {"R": 1.0}, (1, 2): {"L": 0.5, "N": 0.5}, (3, 1): {"N": 1.0}})
    # original: (0.75 + 0.2 + 1.0) / 3 = 0.65; patched: every move is open or a no-op → 0
    assert METRICS["wall_mass"].compute(original, patched) == {"original": approx(0.65), "patched": approx(0.0)}
    assert wall_mass(VectorField(CORRIDOR, (), np.zeros((0, 15), np.float32))) is None


def test_blocked_moves_marks_walls_and_the_world_edge():
    # DIRECTIONS order: left, down, up, right.
    assert blocked_moves(CORRIDOR, [(1, 2), (3, 1)]).tolist() == [[False, True, True, False], [True] * 4]
    # A maze that fills its world: from (0,0) left and down leave the world (no wrap-around to the far side).
    open_world = make_maze("... ... ...", maze_dim=3)
    assert blocked_moves(open_world, [(0, 0), (2, 2)]).tolist() == [
        [True, True, False, False],
        [False, False, True, True],
    ]
    assert blocked_moves(open_world, []).shape == (0, 4)


@covers("p_reach_cheese", "p_reach_top_right", "steps_to_cheese", "mean_steps")
def test_behaviour_metrics_read_the_exact_episode_statistics():
    # Behaviour metrics read a steer.analysis.chain.Behaviour; two stand-ins with hand-set numbers are enough here
    # (tests/test_behaviour.py checks the numbers themselves against the real game).
    from types import SimpleNamespace

    from steer.analysis.metrics import BEHAVIOUR_METRICS, behaviour_metrics

    before = SimpleNamespace(p_cheese=0.9, p_top_right=0.1, steps_to_cheese=12.5, mean_steps=61.25)
    after = SimpleNamespace(p_cheese=0.2, p_top_right=0.7, steps_to_cheese=None, mean_steps=420.0)
    got = behaviour_metrics(before, after)
    assert set(got) == set(BEHAVIOUR_METRICS)
    assert got["p_reach_cheese"] == {"original": 0.9, "patched": 0.2}
    assert got["p_reach_top_right"] == {"original": 0.1, "patched": 0.7}
    assert got["steps_to_cheese"] == {"original": 12.5, "patched": None}
    assert got["mean_steps"] == {"original": 61.25, "patched": 420.0}
    assert all(METRICS[name].paired and METRICS[name].needs_behaviour for name in BEHAVIOUR_METRICS)


# -- the registry ----------------------------------------------------------------------------------------


def test_every_metric_has_a_value_test():
    assert set(METRICS) == COVERED


def test_compute_and_unpatched_shapes():
    original = make_field(T_MAZE, {(1, 3): {"R": 0.5, "U": 0.5}, (1, 4): {"R": 1.0}})
    patched = make_field(T_MAZE, {(1, 3): {"U": 1.0}, (1, 4): {"L": 1.0}})
    assert set(PAIRED) == {name for name, m in METRICS.items() if m.of_field is not None}
    assert "mean_tv" not in PAIRED
    for name, metric in FIELD_METRICS.items():
        value = metric.compute(original, patched)
        if metric.paired:
            assert value == {"original": metric.of_field(original), "patched": metric.of_field(patched)}, name
            assert metric.unpatched(original) == value["original"], name
        else:
            assert isinstance(value, float), name
    assert METRICS["mean_tv"].unpatched(original) == 0.0
    assert unpatched_metrics(original)["mean_tv"] == 0.0
    # (1,3): ½ (0.5 moved off right + |0.5 − 1| onto up) = 0.5; (1,4): right vs left, disjoint → 1.0; mean 0.75
    assert METRICS["mean_tv"].compute(original, patched) == approx(0.75)


def test_maze_metrics_keys_and_the_value_helpers():
    original = make_field(T_MAZE, {(1, 3): {"R": 0.5, "U": 0.5}})
    patched = make_field(T_MAZE, {(1, 3): {"R": 0.25, "U": 0.75}})
    out = maze_metrics(original, patched)
    assert list(out) == [*MAZE_KEYS, *FIELD_METRICS]
    assert (out["maze_dim"], out["cheese"], out["decision_square"]) == (5, [1, 5], [1, 3])
    assert out["p_cheese_ds"] == {"original": approx(0.5), "patched": approx(0.25)}
    assert patched_value(out["p_cheese_ds"]) == approx(0.25)
    assert patched_value(out["mean_tv"]) == out["mean_tv"] == approx(0.25)  # ½ (0.25 + 0.25)
    assert delta(out["p_cheese_ds"]) == approx(-0.25)
    assert delta({"original": None, "patched": 0.3}) is None


# -- the summariser --------------------------------------------------------------------------------------


def test_describe_matches_numpy_and_leaves_none_out():
    values = [3.0, None, 1.0, 4.0, None, 1.5, 9.0]
    # sorted 1, 1.5, 3, 4, 9: mean 18.5 / 5 = 3.7; median 3; q25 at index 1 → 1.5; q75 at index 3 → 4
    assert describe(values, intervals=False) == {"n": 5, "mean": approx(3.7), "median": 3.0, "q25": 1.5, "q75": 4.0}
    with_ci = describe(values)  # intervals on by default; tests/test_stats.py checks them against scipy
    assert with_ci["mean_ci"][0] <= 3.7 <= with_ci["mean_ci"][1] and with_ci["median_ci"][0] <= 3.0
    present = [v for v in values if v is not None]
    assert [describe(values)[k] for k in ("q25", "median", "q75")] == approx(np.percentile(present, [25, 50, 75]))
    # Even count, interpolated: 1 2 3 4 → q25 at index 0.75 → 1.75, median 2.5, q75 at 2.25 → 3.25
    assert describe([4.0, None, 1.0, 3.0, 2.0], intervals=False) == {
        "n": 4,
        "mean": 2.5,
        "median": 2.5,
        "q25": 1.75,
        "q75": 3.25,
    }
    assert describe([0.0], intervals=False) == {"n": 1, "mean": 0.0, "median": 0.0, "q25": 0.0, "q75": 0.0}  # a value
    empty = {"n": 0, "mean": None, "median": None, "q25": None, "q75": None}
    assert describe([], intervals=False) == empty
    assert describe([None, None]) == {**empty, "mean_ci": None, "median_ci": None}


def stats(n, **values):
    return {"n": n, **{key: approx(value) for key, value in values.items()}}


def core(summary):
    """A summary without its intervals (tests/test_stats.py checks those against scipy)."""
    return {k: v for k, v in summary.items() if not k.endswith("_ci")}


def test_summarize_keeps_original_and_patched_apart():
    sides = [(0.2, 0.9), (None, 0.5), (0.6, None)]
    tvs = [0.1, 0.3, 0.2]
    squares = [[1, 3], None, [0, 0]]
    mazes = [
        {
            "decision_square": square,
            **{name: ({"original": o, "patched": p} if m.paired else tv) for name, m in FIELD_METRICS.items()},
        }
        for (o, p), tv, square in zip(sides, tvs, squares, strict=True)
    ]
    out = summarize(mazes)
    assert set(out) == {"mazes", "with_decision_square", "statistics", *FIELD_METRICS}
    assert out["mazes"] == 3
    assert out["with_decision_square"] == 2  # [1, 3] and [0, 0]; None is not a decision square
    for name in PAIRED:
        # original 0.2, 0.6 → mean 0.4, q25 0.3, q75 0.5; patched 0.9, 0.5 → mean 0.7, q25 0.6, q75 0.8
        assert core(out[name]["original"]) == stats(2, mean=0.4, median=0.4, q25=0.3, q75=0.5), name
        assert core(out[name]["patched"]) == stats(2, mean=0.7, median=0.7, q25=0.6, q75=0.8), name
        # the change is over the one maze with both sides: 0.9 − 0.2
        assert out[name]["change"]["n"] == 1 and out[name]["change"]["mean"] == approx(0.7), name
    # 0.1 0.2 0.3: mean 0.2, median 0.2, q25 0.15, q75 0.25
    assert core(out["mean_tv"]) == stats(3, mean=0.2, median=0.2, q25=0.15, q75=0.25)
    empty = summarize([])
    assert empty["mazes"] == 0 and empty["with_decision_square"] == 0
    assert all(empty[name]["original"]["n"] == 0 and empty[name]["change"]["n"] == 0 for name in PAIRED)
