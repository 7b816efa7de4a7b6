"""What the report page shows, made from a report's JSON: summary blocks, tables of rows, figure captions.

Each function takes plain data read from a run folder (the report's `summary`, a list of per-maze rows, a
figure's file name) and returns what a template lays out, with cells formatted by `num` and keys named by
`label`. Nothing here touches files or templates: steer/report/html.py reads the folder, fills the templates and
writes the pages, and a study added later gets its rows shown without changes here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steer.analysis.metrics import METRICS

MAX_FLATTEN_DEPTH = 3  # nested mappings deeper than this are shown as compact JSON in one cell
MAX_INLINE_CHARS = 240  # a value shown as text in a table is cut here (the JSON file has all of it)


def num(value: Any) -> str:
    """A value for a table cell: numbers to 4 significant digits, None as a dash, the rest as compact text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Probabilities read best as 0.971 and 1.000; tiny values and p-values keep two significant digits.
        return f"{value:.3f}" if value == 0 or 0.001 <= abs(value) < 10_000 else f"{value:.2g}"
    if isinstance(value, str):
        return value if len(value) <= MAX_INLINE_CHARS else value[:MAX_INLINE_CHARS] + "…"
    if isinstance(value, list) and len(value) <= 12 and all(_is_number(v) or v is None for v in value):
        return "[" + ", ".join(num(v) for v in value) + "]"  # a square [r, c], a short series
    text = json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= MAX_INLINE_CHARS else text[:MAX_INLINE_CHARS] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def label(key: str) -> str:
    """A readable name for a key: the metric registry's label for metric names."""
    metric = METRICS.get(key)
    return metric.label if metric is not None else key.replace("_", " ")


# -- the summary: whatever describe() dicts the report's summary holds ------------------------------------
@dataclass
class StatBlock:
    """A group of summary rows: the top level, or one item of a list such as `by_coeff` or `by_layer`."""

    title: str
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path label, describe() dict)
    facts: list[tuple[str, Any]] = field(default_factory=list)  # (path label, a plain value)
    series: list[tuple[str, Any]] = field(default_factory=list)  # (path label, a list: chart data, shown folded)


def _is_interval(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)


def _is_stat(value: Any) -> bool:
    """A `steer.analysis.metrics.describe` result, whatever keys it grows (ci_low/ci_high, mean_ci: [low, high], a
    p-value, …): a mapping with a count `n` whose values are numbers, intervals, short text or undefined."""
    return (
        isinstance(value, dict)
        and _is_number(value.get("n"))
        and all(v is None or _is_number(v) or isinstance(v, str) or _is_interval(v) for v in value.values())
    )


def _item_title(item: Mapping[str, Any]) -> tuple[str, str | None]:
    """A list item's title from its first plain value (`coeff 1`, `layer block2.res1.resadd_out`)."""
    for key, value in item.items():
        if _is_number(value) or isinstance(value, str):
            return f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}", key
    return "", None


def _walk(value: Any, path: list[str], block: StatBlock, blocks: list[StatBlock]) -> None:
    if _is_stat(value):
        block.rows.append((" · ".join(path) or "value", value))
    elif isinstance(value, dict):
        for key, sub in value.items():
            _walk(sub, [*path, label(str(key))], block, blocks)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            title, used = _item_title(item)
            sub = StatBlock(title or " · ".join([*path, f"#{i}"]))
            for key, v in item.items():
                if key != used:
                    _walk(v, [label(str(key))], sub, blocks)
            blocks.append(sub)
    elif isinstance(value, list | dict) or len(path) > 1:
        # Lists, and values nested below the top (a sweep's chart bands), are chart data: shown folded.
        block.series.append((" · ".join(path), value))
    else:
        block.facts.append((" · ".join(path), value))


def summary_blocks(summary: Any) -> tuple[list[StatBlock], list[str]]:
    """The summary as blocks of rows, and the statistic columns (`n` first, then in first-seen order)."""
    top = StatBlock("")
    blocks: list[StatBlock] = [top]
    if summary is not None:
        _walk(summary, [], top, blocks)
    columns: dict[str, None] = {"n": None}
    for block in blocks:
        for _, stat in block.rows:
            columns.update(dict.fromkeys(stat))
    return [b for b in blocks if b.rows or b.facts or b.series], list(columns)


# -- tables of rows: mazes, vectors, pairs, skipped -------------------------------------------------------
def flatten(row: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """A row's cells: nested mappings as dotted columns; lists of mappings (by_coeff, singles) left out."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < MAX_FLATTEN_DEPTH:
            out.update(flatten(value, f"{name}.", depth + 1))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            continue  # per-item lists do not fit a cell; the report JSON has them
        else:
            out[name] = value
    return out


@dataclass
class Table:
    key: str  # the report key the rows came from
    title: str
    columns: list[str]
    rows: list[list[Any]]
    links: list[list[tuple[str, str]]]  # per row: (text, href) of the files its cell wrote
    left_out: list[str]  # keys of per-item lists left out of the cells


def _column_title(column: str) -> str:
    """A column's tooltip: each part's label (`p_cheese_ds.patched` -> P(cheese | decision square) · patched)."""
    return " · ".join(label(part) for part in column.split("."))


def make_table(key: str, title: str, items: Sequence[Any], cell_files: Mapping[int, list[str]]) -> Table:
    rows = [flatten(item) for item in items if isinstance(item, dict)]
    columns: dict[str, None] = {}
    left_out: dict[str, None] = {}
    for item, flat in zip((i for i in items if isinstance(i, dict)), rows, strict=True):
        columns.update(dict.fromkeys(flat))
        left_out.update(
            dict.fromkeys(
                k for k, v in item.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
            )
        )
    names = list(columns)
    links = []
    for flat in rows:
        seed = flat.get("seed")
        files = cell_files.get(seed, []) if isinstance(seed, int) else []
        links.append([(f, f"#fig-{f}" if f.endswith(".png") else f) for f in files])
    return Table(key, title, names, [[flat.get(c) for c in names] for flat in rows], links, list(left_out))


TABLE_TITLES = {
    "mazes": "Per-maze results",
    "vectors": "Vectors written",
    "pairs": "Source × target pairs",
}


# -- figures ----------------------------------------------------------------------------------------------
CAPTIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"field-seed(\d+)\.png"),
        "Seed {0}: the original policy's vector field, the patched field, and their difference (red).",
    ),
    (re.compile(r"sweep-fields-seed(\d+)\.png"), "Seed {0}: the vector field at each coefficient of the sweep."),
    (
        re.compile(r"compose-seed(\d+)\.png"),
        "Seed {0}: the original field, each vector alone, all vectors together, and the joint change.",
    ),
    (re.compile(r"transfer-src(\d+)-tgt(\d+)\.png"), "The vector of seed {0} applied to the maze of seed {1}."),
    (
        re.compile(r"sweep-metrics\.png"),
        "Every metric against the coefficient: the median over mazes (line) and the 25–75% band; dashed: unpatched.",
    ),
    (
        re.compile(r"transfer-matrix\.png"),
        "The effect of each source seed's vector (rows) on each target maze (columns).",
    ),
    (re.compile(r"layer-sweep\.png"), "The effect of the same vector kind added at each hook point of the network."),
]


def caption(name: str, mazes: Mapping[int, Mapping[str, Any]]) -> str:
    """What a figure shows, from its file name; a per-seed figure adds the maze's headline number."""
    for pattern, text in CAPTIONS:
        m = pattern.fullmatch(name)
        if m:
            out = text.format(*m.groups())
            if m.groups() and len(m.groups()) == 1:
                out += _headline(mazes.get(int(m.group(1))))
            return out
    return ""  # a figure this module has no words for: its file name alone


def _headline(maze: Mapping[str, Any] | None) -> str:
    if not maze:
        return ""
    value = maze.get("p_cheese_ds")
    if isinstance(value, dict) and _is_number(value.get("original")) and _is_number(value.get("patched")):
        return f" {METRICS['p_cheese_ds'].label}: {num(value['original'])} → {num(value['patched'])}."
    return ""


@dataclass
class Figure:
    name: str
    caption: str
    uri: str | None  # None: the file is missing or not a PNG (the page says so)
