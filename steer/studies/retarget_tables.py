"""`steer retarget`'s tables: `mazes.csv`, per maze and condition its mean over targets, and `targets.csv`, per
target square and condition, read back from each maze's `retarget-seed<N>.json` (apart from the study's module,
which is over 400 lines already)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from steer.analysis.retarget_summary import CONDITIONS, SPEARMANS
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table, square_keys
from steer.run.study import Finished, StudyTable

CONDITION = Column(
    "condition",
    "str",
    "",
    "intervention (the channels set at the target), none (the policy left alone), cheese_moved (the cheese moved "
    "onto the target), random and random_scaled (random channels, at the value or at its multiple of their "
    "scale), elsewhere (the channels set at another square); with feature: feature (a dictionary feature's code "
    "clamped at the target), feature_random (its norm-matched random direction) and feature_elsewhere (the feature "
    "clamped at another square)",
)
P_REACH = Column("p_reach", "float", "probability", "P(reach the target within 500 steps), exact")
GEOMETRIC = Column(
    "geometric_path_p", "float", "probability", "procgen-tools' geometric mean of the shortest path's action probs"
)
CHANNELS = Column("channels", "str", "", "intervention, elsewhere: the channels set; random*: the random channels")
MAZES = Table(
    "mazes",
    "one row per maze and condition: the mean over the maze's targets",
    (
        SEED,
        MAZE_COLUMNS[0],
        CONDITION,
        Column("targets", "int", "squares", "target squares on the maze"),
        CHANNELS,
        Column("not_run", "str", "", "why the condition was not run on this maze (its values are then empty)"),
        P_REACH,
        GEOMETRIC,
        Column(
            "share_half_of_cheese_moved",
            "float",
            "fraction",
            "intervention: share of targets reached with at least half the probability of cheese_moved",
        ),
        *(
            Column(
                key,
                "float",
                "rho",
                f"intervention: Spearman's rho of a target's distance from the start-to-"
                f"top-right path with {what} (0 for a flat maze)",
            )
            for key, what in zip(SPEARMANS, ("P(reach)", "the gain over none"), strict=True)
        ),
    ),
)
TARGETS = Table(
    "targets",
    "one row per maze, target square and condition",
    (
        SEED,
        Column("target_row", "int", "square", "the target's row (row 0 at the bottom)"),
        Column("target_col", "int", "square", "the target's column"),
        Column("distance_from_start", "int", "steps", "the target's path distance from the mouse's start"),
        Column("distance_from_top_right_path", "int", "steps", "its distance from the start-to-top-right path"),
        CONDITION,
        P_REACH,
        Column("steps", "float", "steps", "expected steps to the target, if reached"),
        GEOMETRIC,
        Column("at_row", "int", "square", "elsewhere: the square the channels were set at instead"),
        Column("at_col", "int", "square", "elsewhere: its column"),
    ),
)


def _channels(f: Finished, m: dict[str, Any], condition: str) -> str | None:
    if condition in ("intervention", "elsewhere"):
        return " ".join(map(str, f.body["channels"]))
    if condition.startswith("random"):
        return " ".join(map(str, m["random_channels"]))
    return None


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        keys = {"seed": m["seed"], "maze_dim": m["maze_dim"], "targets": m["targets"]}
        for condition in CONDITIONS:
            if condition not in m:
                continue
            c = m[condition] or {}
            row = {**keys, "condition": condition, "channels": _channels(f, m, condition)}
            row.update(p_reach=c.get("p_reach"), geometric_path_p=c.get("geometric_path_p"))
            row["not_run"] = m["not_run"].get(condition)
            if condition == "intervention":
                row["share_half_of_cheese_moved"] = m.get("share_half_of_cheese_moved")
                row.update({key: m[key] for key in SPEARMANS})
            yield row


def target_rows(f: Finished) -> Iterator[dict[str, Any]]:
    """From each maze's retarget-seed<N>.json, the cell's own record of every target (a maze at a time)."""
    for m in f.done:
        record = json.loads((f.folder / f"retarget-seed{m['seed']}.json").read_text())
        for t in record["targets"]:
            keys = {"seed": m["seed"], **square_keys("target", t["square"])}
            keys.update({k: t[k] for k in ("distance_from_start", "distance_from_top_right_path")})
            for condition in CONDITIONS:
                if condition in t:
                    c = t[condition]
                    values = {
                        "p_reach": c["p_reach"],
                        "steps": c["steps"],
                        "geometric_path_p": c.get("geometric_path_p"),
                    }
                    yield {**keys, "condition": condition, **values, **square_keys("at", c.get("square"))}


TABLES = (StudyTable(MAZES, maze_rows), StudyTable(TARGETS, target_rows))
