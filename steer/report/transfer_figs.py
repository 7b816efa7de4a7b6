"""`steer transfer`'s charts, drawn from a report body (metrics.json): the source × target effect matrix
(`transfer-matrix.png`, a heat map on a symmetric diverging scale, the averaged vector's row below a divider)
and, with a mean vector, its effect per target beside each target's own vector and the other sources' mean
(`transfer-mean-vs-own.png`, a paired chart). The maze figures of single pairs are the study's own
(steer/studies/transfer.py, maze panels of steer/report/render.py).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from steer.analysis.comparison import effect_key as metric_key
from steer.analysis.comparison import mean_series
from steer.analysis.metrics import effect_label
from steer.net.vectors import KINDS
from steer.report.charts import heatmap, paired_chart


def effect_key(kind: str) -> str:
    """The matrix entry that shows a vector kind's effect: the change in its metric (TV for a comparison metric)."""
    return metric_key(KINDS[kind].effect_metric)


def matrix_chart(body: dict[str, Any], run_title: str) -> Figure:
    """The source × target effect matrix from a report body (metrics.json), the averaged vector's row below a
    divider where there is one."""
    kind, coeff = body["vector"]["kind"], body["vector"]["coeff"]
    dims = {m["seed"]: m["maze_dim"] for m in body["mazes"]}
    unused = {k["seed"] for k in body["skipped"] if k["role"] == "source"}

    def label(seed: int, skipped: bool) -> str:
        return f"seed {seed} (skipped)" if skipped else f"seed {seed} ({dims[seed]}x{dims[seed]})"

    sources, targets, matrices = body["sources"], body["targets"], body["matrices"]
    rows = [label(s, s in unused) for s in sources]
    columns = [label(t, t not in dims) for t in targets]
    notes = [[_pair_note(matrices, i, j) for j in range(len(targets))] for i in range(len(sources))]
    effect = effect_label(KINDS[kind].effect_metric)
    footer = (
        "n/a: undefined for that target (e.g. no decision square) or a skipped seed\n"
        "same dim: source and target mazes have the same size · same cheese: the cheese is on the same square"
    )
    values = matrices["effect"]
    mean_row = body.get("mean_row")
    if mean_row is not None:  # the averaged vector: one more row, below a divider
        rows = [*rows, mean_row["label"]]
        values = [*values, mean_row["effect"]]
        notes = [*notes, ["in sample" if s else "held out" for s in mean_row["in_sample"]]]
        footer += (
            f"\nlast row: {mean_row['label']}, one vector for every target · in sample: the target's own pair "
            "is one of those averaged"
        )
    return heatmap(
        f"{kind} vectors across mazes · coeff {coeff:g} · {effect} · {run_title}",
        rows,
        columns,
        values,
        notes,
        axis_titles=("source (vector from)", "target (applied to)"),
        footer=footer,
        divider_before=len(sources) if mean_row is not None else None,
        scale_label=effect,
    )


def mean_chart(body: dict[str, Any], run_title: str) -> Figure:
    """Per target, the averaged vector's effect beside the target's own vector's and the other sources' mean,
    from a report body with a mean vector (metrics.json)."""
    kind, coeff = body["vector"]["kind"], body["vector"]["coeff"]
    key, label = effect_key(kind), body["mean_vector"]["label"]
    targets = body["summary"]["by_source"]["targets"]
    mean_pairs = {p["target"]: p for p in body["mean_pairs"]}
    unused = {k["seed"] for k in body["skipped"] if k["role"] == "source"}
    sources = [s for s in body["sources"] if s not in unused]
    return paired_chart(
        f"{kind} vector, coeff {coeff:g}: {label} against each target's own · {run_title}",
        [str(t) for t in targets],
        mean_series(targets, mean_pairs, body["pairs"], sources, key),
        {"mean": label, "own": "the target's own vector", "other": "mean over the other single sources"},
        effect_label(KINDS[kind].effect_metric),
        footer="a column per target where the effect is defined",
        marked=[mean_pairs[t]["in_sample"] for t in targets],
        marked_note="in sample: the target's own pair is one of the averaged vectors",
    )


def _pair_note(matrices: dict[str, Any], i: int, j: int) -> str:
    same = [w for w, key in (("dim", "same_maze_dim"), ("cheese", "same_cheese")) if matrices[key][i][j]]
    return f"same {' + '.join(same)}" if same else ""


__all__ = ["effect_key", "matrix_chart", "mean_chart"]
