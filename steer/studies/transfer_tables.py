"""`steer transfer`'s table: `mazes.csv`, per target maze its original and each source's vector (the source x
target cells) and the mean vector, apart from the study's module, which is over 400 lines already."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from steer.report.tables import (
    COEFF,
    MAZE_COLUMNS,
    SEED,
    Column,
    Table,
    maze_keys,
    metric_columns,
    metric_values,
    square_keys,
)
from steer.run.study import Finished, StudyTable

MAZES = Table(
    "mazes",
    "one row per target maze and condition: the original, then one per source (the source x target cells)",
    (
        SEED,
        *MAZE_COLUMNS,
        Column(
            "condition",
            "str",
            "",
            "original (the policy left alone); patched (with a source maze's vector); mean (with the mean vector, "
            "when vector.source_seeds gives one)",
        ),
        Column("source", "int", "", "patched: the source maze whose own vector was added"),
        Column("source_maze_dim", "int", "squares", "patched: the source maze's side"),
        Column("source_cheese_row", "int", "square", "patched: the source maze's cheese row"),
        Column("source_cheese_col", "int", "square", "patched: the source maze's cheese column"),
        Column("same_maze_dim", "bool", "", "patched: source and target are the same size"),
        Column("same_cheese", "bool", "", "patched: source and target have their cheese on the same square"),
        Column("in_sample", "bool", "", "mean: the target's own pair is one of the vectors the mean averages"),
        COEFF,
        *metric_columns(),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    """Per target: its original (every pair measures the same one), then each source's vector and the mean."""
    coeff = f.spec.options.coeff
    for d in f.done:
        keys = {"seed": d["seed"], **maze_keys(d["maze"])}
        pairs = [*d["pairs"], *([d["mean_pair"]] if "mean_pair" in d else [])]
        if pairs:
            yield {**keys, "condition": "original", **metric_values(pairs[0]["metrics"], "original")}
        for p in d["pairs"]:
            source = {k: p[k] for k in ("source", "source_maze_dim", "same_maze_dim", "same_cheese")}
            yield {**keys, "condition": "patched", **source, **square_keys("source_cheese", p["source_cheese"]),
                   "coeff": coeff, **metric_values(p["metrics"], "patched")}  # fmt: skip
        if "mean_pair" in d:
            p = d["mean_pair"]
            yield {**keys, "condition": "mean", "in_sample": p["in_sample"], "coeff": coeff,
                   **metric_values(p["metrics"], "patched")}  # fmt: skip


TABLES = (StudyTable(MAZES, maze_rows),)
