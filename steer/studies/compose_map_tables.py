"""`steer compose-map`'s tables: `mazes.csv` (per maze, combination and grid cell: the additivity error at the action
probabilities and the behaviour metrics) and `sites.csv` (the error at each downstream site), apart from the
study's module, which is near 400 lines already."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from steer.report.tables import (
    MAZE_COLUMNS,
    SEED,
    Column,
    Table,
    maze_keys,
    metric_columns,
)
from steer.run.study import Finished, StudyTable

PROBS = "action_probs"  # the pseudo-site after fc_policy
BEHAVIOUR = ("p_cheese_ds", "p_top_right_ds")  # the metrics the map measures at every cell, a column each

COMBO = Column(
    "condition",
    "str",
    "",
    "the second vector: pair (v1 with v2), self (v1 with itself), random (v1 with a Gaussian vector of v2's norm)",
)
S = Column("s", "float", "x vector", "the first vector's coefficient")
T = Column("t", "float", "x vector", "the second vector's coefficient")
ERROR = "||D(s,t) - D(s,0) - D(0,t)|| / ||D(s,t)||, Frobenius over squares (empty at s = t = 0)"
MAZES = Table(
    "mazes",
    "one row per maze, condition and grid cell (s, t)",
    (
        SEED,
        *MAZE_COLUMNS,
        COMBO,
        S,
        T,
        Column("v1_norm", "float", "", "the first vector's norm"),
        Column("v2_norm", "float", "", "the second vector's norm (random: the Gaussian vector has this norm too)"),
        Column("random_seed", "int", "", "random: the seed of the Gaussian vector"),
        Column("additivity_error", "float", "fraction", f"at the action probabilities: {ERROR}"),
        *metric_columns(BEHAVIOUR),
        *(
            Column(
                f"prediction_error_{name}",
                "float",
                "probability",
                f"|{name}(s,t) - [{name}(s,0) + {name}(0,t) - {name}(0,0)]|",
            )
            for name in BEHAVIOUR
        ),
    ),
)
SITES = Table(
    "sites",
    "one row per maze, condition, grid cell (s, t) and downstream site (the action probabilities are in mazes.csv)",
    (
        SEED,
        COMBO,
        S,
        T,
        Column("site", "str", "", "the hook point"),
        Column("additivity_error", "float", "fraction", ERROR),
    ),
)


def _cells(f: Finished) -> Iterator[tuple[dict[str, Any], str, dict[str, Any], int, int, dict[str, Any]]]:
    """(maze, combo, its record, i, j, the cell's coefficients) over every maze, combo and grid cell."""
    ss, ts = f.plan.grid["s"], f.plan.grid["t"]
    for m in f.done:
        for combo, record in m["combos"].items():
            for i, s in enumerate(ss):
                for j, t in enumerate(ts):
                    yield m, combo, record, i, j, {"seed": m["seed"], "condition": combo, "s": s, "t": t}


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m, combo, record, i, j, keys in _cells(f):
        yield {
            **keys,
            **maze_keys(m),
            "v1_norm": m["v1_norm"],
            "v2_norm": m["v2_norm"],
            "random_seed": m["random_seed"] if combo == "random" else None,
            "additivity_error": record["additivity_error"][PROBS][i][j],
            **{name: record["behaviour"][name][i][j] for name in BEHAVIOUR},
            **{f"prediction_error_{name}": record["prediction_error"][name][i][j] for name in BEHAVIOUR},
        }


def site_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for _, _, record, i, j, keys in _cells(f):
        for site, cells in record["additivity_error"].items():
            if site != PROBS:
                yield {**keys, "site": site, "additivity_error": cells[i][j]}


TABLES = (StudyTable(MAZES, maze_rows), StudyTable(SITES, site_rows))
