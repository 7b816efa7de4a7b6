"""`steer dose-response`'s tables: `mazes.csv` (per maze and t, the behaviour metrics) and `sites.csv` (per maze,
site and t, the dose-response measures), apart from the study's module, which is near 400 lines already."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from steer.net.dose import sign_pairs
from steer.report.tables import (
    MAZE_COLUMNS,
    SEED,
    VECTOR_SOURCE_SEED,
    Column,
    Table,
    maze_keys,
    metric_columns,
)
from steer.run.study import Finished, StudyTable

PROBS = "action_probs"  # the pseudo-site after fc_policy: the policy's action distribution
BEHAVIOUR = ("p_cheese_ds", "p_top_right_ds", "mean_tv")

T = Column("t", "float", "x vector", "the coefficient (every D(t) is taken from t = 0)")
MAZES = Table(
    "mazes",
    "one row per maze and condition: the original, then one per t",
    (
        SEED,
        *MAZE_COLUMNS,
        Column("condition", "str", "", "original (the policy left alone); patched (with t x the vector)"),
        T,
        VECTOR_SOURCE_SEED,
        Column("vector_norm", "float", "", "the vector's norm"),
        *metric_columns(BEHAVIOUR),
    ),
)
SITES = Table(
    "sites",
    "one row per maze, site and t: the dose-response measures (`action_probs`: the action probabilities)",
    (
        SEED,
        Column("site", "str", "", "the hook point downstream of the layer, or action_probs"),
        T,
        Column("norm", "float", "", "||D(t)||, the change at the site, over the maze's squares"),
        Column("linearity", "float", "ratio", "||D(t)|| / (|t| x the slope at the smallest |t|): 1 for a linear site"),
        Column("relu_flips", "float", "fraction", "at a ReLU output: the share of units whose on/off state flips"),
        Column(
            "asymmetry",
            "float",
            "fraction",
            "on the row of +|t| when -|t| is measured too: ||D(t) + D(-t)|| / (||D(t)|| + ||D(-t)||)",
        ),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m), "vector_source_seed": m["vector_source_seed"]}
        yield {**keys, "condition": "original", **m["original"]}
        for i, t in enumerate(f.plan.ts):
            values = {name: m["behaviour"][name][i] for name in BEHAVIOUR}
            yield {**keys, "condition": "patched", "t": t, "vector_norm": m["vector_norm"], **values}


def site_rows(f: Finished) -> Iterator[dict[str, Any]]:
    ts = f.plan.ts
    asymmetric = {pos: k for k, (_, _, pos) in enumerate(sign_pairs(ts))}  # index of +|t| -> its magnitude's
    for m in f.done:
        for site, r in m["sites"].items():
            for i, t in enumerate(ts):
                yield {"seed": m["seed"], "site": site, "t": t, "norm": r["norm"][i], "linearity": r["linearity"][i],
                       "relu_flips": r["relu_flips"][i] if r["relu_flips"] is not None else None,
                       "asymmetry": r["asymmetry"][asymmetric[i]] if i in asymmetric else None}  # fmt: skip


TABLES = (StudyTable(MAZES, maze_rows), StudyTable(SITES, site_rows))
