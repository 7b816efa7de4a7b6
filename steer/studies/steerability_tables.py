"""`steer steerability`'s tables: `mazes.csv` (per maze, site and coefficient: the target and the crumbling measures)
and `steerability.csv` (per maze and site: steerability, the fit, crumbling, the class and the predictors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from steer.analysis.steerability_predictors import PREDICTORS
from steer.report.tables import COEFF, MAZE_COLUMNS, SEED, Column, Table, maze_keys
from steer.run.study import Finished, StudyTable

SITE = Column("site", "str", "", "the hook point the vector is added at")
MAZES = Table(
    "mazes",
    "one row per maze, site and coefficient (0: the policy left alone)",
    (
        SEED,
        *MAZE_COLUMNS,
        SITE,
        COEFF,
        Column("target", "str", "", "the metric the curve follows (metrics.json `target`)"),
        Column("p", "float", "probability", "the target at this coefficient (exact)"),
        Column("log_odds", "float", "log-odds", "logit(p), p clipped to [1e-4, 1 - 1e-4]"),
        Column("wall_mass", "float", "probability", "mean P(move into a wall), the maze's own facing"),
        Column("entropy", "float", "nats", "mean action entropy, the maze's own facing"),
        Column(
            "crumbled", "bool", "", "this coefficient crumbles the policy (a wall_mass or entropy rise past `crumble`)"
        ),
    ),
)
SUMMARY = Table(
    "steerability",
    "one row per maze and site: the curve read as steerability, its fit, crumbling, the class, and the predictors",
    (
        SEED,
        *MAZE_COLUMNS,
        SITE,
        Column("steerability", "float", "log-odds per unit coefficient", "the slope of the log-odds near 0 (least "
               "squares over |c| <= fit_within) times the claimed direction: positive moves the claimed way"),
        Column("slope", "float", "log-odds per unit coefficient", "the slope itself, whatever the claimed direction"),
        Column("residual", "float", "log-odds", "root-mean-square residual of that linear fit"),
        Column("crumble_pos", "float", "x vector", "the first positive coefficient that crumbles the policy"),
        Column("crumble_neg", "float", "x vector", "the first negative coefficient that crumbles the policy"),
        Column("moved_by", "float", "probability", "direction x (P at the largest minus P at the smallest "
               "non-crumbling coefficient)"),
        Column("class", "str", "", "claimed (moved_by >= moved), anti (<= -moved) or not_moved; empty where the "
               "target is undefined"),
        Column("crumbles_before_moving", "bool", "", "crumbles somewhere on the grid and not moved"),
        Column("moves_and_returns", "bool", "", "not moved, yet moved by at least `moved` from P(0) somewhere "
               "inside the non-crumbling range"),
        Column("p_original", "float", "probability", "the target with the policy left alone"),
        *(Column(name, "float", "", about) for name, about in PREDICTORS.items() if name != "maze_dim"),
    ),
)  # fmt: skip


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    target = f.body["target"]
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        for r in m["by_layer"]:
            for i, c in enumerate(f.body["coeffs"]):
                yield {**keys, "site": r["layer"], "coeff": c, "target": target, "p": r["p"][i],
                       "log_odds": r["log_odds"][i] if r["log_odds"] is not None else None,
                       "wall_mass": r["wall_mass"][i], "entropy": r["entropy"][i],
                       "crumbled": r["crumbled"][i]}  # fmt: skip


def summary_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        for r in m["by_layer"]:
            flag, swing = r["crumbles_before_moving"], r.get("moves_and_returns")
            yield {
                **keys,
                "site": r["layer"],
                **{k: r[k] for k in ("steerability", "slope", "residual", "crumble_pos", "crumble_neg", "moved_by")},
                "class": r["class"],
                "crumbles_before_moving": None if flag is None else bool(flag),
                "moves_and_returns": None if swing is None else bool(swing),
                "p_original": r["p_original"],
                **{k: (r[k] if k in r else m.get(k)) for k in PREDICTORS if k != "maze_dim"},
            }


TABLES = (StudyTable(MAZES, maze_rows), StudyTable(SUMMARY, summary_rows))
