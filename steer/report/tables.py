"""Tidy tables beside a run's JSON: each declared once (its columns' names, types, units and meanings), its rows
written one at a time.

A study declares the tables it writes (`steer.run.study.StudyTable`: a `Table` and the function that yields its
rows from the finished cells); the runner writes each as `<name>.csv`, as `<name>.parquet` too when pyarrow is
importable, and every table's columns into `tables.json`, which `steer.load_run` reads to give each column its
type. A row is a mapping of column name to value: a column it leaves out is empty, a key that is not a column
is an error (so a declaration cannot fall behind its rows). `metrics.json` stays the full record; a table is the
same numbers laid out one row per maze and condition, for pandas.

The shared columns are declared here: the maze's own keys (`MAZE_COLUMNS`) and one column per metric of the
registry (`metric_columns`, its unit and label from `steer.analysis.metrics.METRICS`). docs/outputs.md's table
of columns is generated from the declarations (`docs_block`, `make tables-doc`), and a test holds it there.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

from steer.analysis.metrics import METRICS
from steer.io import Writer

ColumnType = Literal["int", "float", "str", "bool"]
SCHEMA = "tables.json"  # beside the tables: every table's columns, for readers
PARQUET_ROWS = 65_536  # rows per Parquet row group: a run of 10,000 mazes never holds its table whole


@dataclass(frozen=True)
class Column:
    """One column: its name, the type of its values, the unit they are in ("" for an id, a name or a count) and
    what it holds."""

    name: str
    type: ColumnType
    unit: str
    about: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "unit": self.unit, "about": self.about}


@dataclass(frozen=True)
class Table:
    """A table a run writes: `<name>.csv` (and `.parquet`), what one row is, and its columns in order."""

    name: str
    about: str
    columns: tuple[Column, ...]
    written: bool = True  # a run writes it as <name>.csv; False: a DataFrame only (a batch's claims, from claims.json)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.name), self.name  # a file name in the run folder
        assert len(set(names)) == len(names), f"{self.name}: a column declared twice"

    @property
    def csv(self) -> str:
        return f"{self.name}.csv"

    @property
    def parquet(self) -> str:
        return f"{self.name}.parquet"


# -- the shared columns --------------------------------------------------------------------------------------

SEED = Column("seed", "int", "", "the maze's level seed")
MAZE_COLUMNS = (
    Column("maze_dim", "int", "squares", "the inner maze's side"),
    Column("cheese_row", "int", "square", "the cheese's row (row 0 at the bottom); empty without cheese"),
    Column("cheese_col", "int", "square", "the cheese's column; empty without cheese"),
    Column(
        "decision_square_row",
        "int",
        "square",
        "the decision square's row (where the paths to the cheese and to the top-right part); empty without one",
    ),
    Column("decision_square_col", "int", "square", "the decision square's column; empty without one"),
)
COEFF = Column("coeff", "float", "x vector", "the coefficient the vector was added with")
VECTOR_SOURCE_SEED = Column(
    "vector_source_seed", "int", "", "the maze the vector was computed on (empty for a mean or a file)"
)


def metric_columns(names: Iterable[str] = METRICS) -> tuple[Column, ...]:
    """One column per registered metric: a field metric's value on the row's side, a comparison metric's value
    on the row of the condition it compares with the original (empty on the original's row)."""
    return tuple(Column(name, "float", METRICS[name].unit, METRICS[name].label) for name in names)


def square_keys(prefix: str, square: Sequence[int] | None) -> dict[str, int | None]:
    """A (row, col) square as two columns, `<prefix>_row` and `<prefix>_col` (both empty for None)."""
    return {f"{prefix}_row": square[0] if square else None, f"{prefix}_col": square[1] if square else None}


def maze_keys(record: Mapping[str, Any]) -> dict[str, Any]:
    """The `MAZE_COLUMNS` of a record that holds `steer.analysis.metrics.maze_info`'s keys."""
    return {
        "maze_dim": record.get("maze_dim"),
        **square_keys("cheese", record.get("cheese")),
        **square_keys("decision_square", record.get("decision_square")),
    }


Side = Literal["original", "patched"]


def metric_values(record: Mapping[str, Any], side: Side, names: Iterable[str] = METRICS) -> dict[str, Any]:
    """The registered metrics `record` holds, on one side: a field metric stored as {original, patched} gives that
    side's value, one stored as a single number (a record of one side only) that number; a comparison metric
    belongs to the patched side (it compares it with the original)."""
    out: dict[str, Any] = {}
    for name in names:
        if name not in record:
            continue
        value = record[name]
        if isinstance(value, dict):
            out[name] = value.get(side)
        elif side == "patched" or METRICS[name].paired:
            out[name] = value
    return out


# -- writing ------------------------------------------------------------------------------------------------


def _value(table: Table, column: Column, value: Any) -> Any:
    """A row's value as its column's type, None when missing; a value of another type is the study's bug."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    wrong = f"{table.name}.{column.name}: {value!r} is not a {column.type}"
    if column.type == "bool":
        if type(value).__name__ not in ("bool", "bool_"):
            raise TypeError(wrong)
        return bool(value)
    if column.type == "str":
        if not isinstance(value, str):
            raise TypeError(wrong)
        return value
    if isinstance(value, bool) or not hasattr(value, "__float__"):  # a number: int, float or numpy's
        raise TypeError(wrong)
    if column.type == "int":
        if float(value) != int(value):
            raise TypeError(wrong)
        return int(value)
    return float(value)


def typed_rows(table: Table, rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Any]]:
    """Each row as a list in column order, each value its column's type (None: empty)."""
    names = {c.name for c in table.columns}
    for row in rows:
        extra = set(row) - names
        if extra:
            raise KeyError(f"{table.name}: {sorted(extra)} are not columns of the table; declare them")
        yield [_value(table, c, row.get(c.name)) for c in table.columns]


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return value


def csv_writer(table: Table, rows: Callable[[], Iterable[Mapping[str, Any]]]) -> Writer:
    """`<name>.csv`: the header, then a row at a time (rows are made as they are written, never held whole)."""

    def write(f: IO[bytes]) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
        out = csv.writer(text, lineterminator="\n")
        out.writerow([c.name for c in table.columns])
        for row in typed_rows(table, rows()):
            out.writerow([_text(v) for v in row])
        text.detach()  # the file stays open: the caller syncs and closes it

    return write


def parquet_available() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


_ARROW = {"int": "int64", "float": "float64", "str": "string", "bool": "bool_"}


def parquet_writer(table: Table, rows: Callable[[], Iterable[Mapping[str, Any]]]) -> Writer:
    """`<name>.parquet` (pyarrow: typed columns), written a row group at a time."""

    def write(f: IO[bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([pa.field(c.name, getattr(pa, _ARROW[c.type])()) for c in table.columns])

        def group(batch: list[list[Any]]) -> Any:  # rows to one row group's columns
            return pa.table([list(values) for values in zip(*batch, strict=True)], schema=schema)

        with pq.ParquetWriter(f, schema) as out:
            batch: list[list[Any]] = []
            for row in typed_rows(table, rows()):
                batch.append(row)
                if len(batch) == PARQUET_ROWS:
                    out.write_table(group(batch))
                    batch = []
            if batch:
                out.write_table(group(batch))

    return write


def schema(tables: Sequence[Table], parquet: bool) -> bytes:
    """tables.json: each table's files, what a row is and its columns, for readers of the run folder."""
    listed = [
        {
            "name": t.name,
            "about": t.about,
            "files": [t.csv, *([t.parquet] if parquet else [])],
            "columns": [c.as_json() for c in t.columns],
        }
        for t in tables
    ]
    return (json.dumps({"tables": listed}, indent=1) + "\n").encode()


# -- the docs -----------------------------------------------------------------------------------------------

DOCS_MARKS = ("<!-- tables:start -->", "<!-- tables:end -->")


def _row(c: Column) -> str:
    about = c.about.replace("|", "\\|")  # a pipe would end the Markdown cell
    return f"| `{c.name}` | {c.type} | {c.unit or '—'} | {about} |"


def docs_heading(command: str, table: Table) -> str:
    """A table's heading in docs/outputs.md: the command and the file (or, for a DataFrame only, its name)."""
    return f"**`{command}`: `{table.csv if table.written else table.name}`**"


def docs_block(tables: Mapping[str, Sequence[Table]]) -> str:
    """docs/outputs.md's tables section: the columns several commands' tables share once, then per command its
    tables, each with its columns in order and those of its own (name, type, unit, meaning)."""
    commands: dict[Column, set[str]] = {}
    for command, ts in tables.items():
        for t in ts:
            for c in t.columns:
                commands.setdefault(c, set()).add(command)
    shared = [c for c, used in commands.items() if len(used) > 1]  # the same column, meaning and unit
    head = "| column | type | unit | meaning |\n|---|---|---|---|"
    lines = [
        "Columns the tables of several commands share (each metric column is one metric of the registry):",
        "",
        head,
        *(_row(c) for c in shared),
        "",
    ]
    for command, ts in tables.items():
        for t in ts:
            own = [c for c in t.columns if c not in shared]
            lines += [
                f"{docs_heading(command, t)}: {t.about}. Columns: {', '.join(f'`{c.name}`' for c in t.columns)}.",
                "",
            ]
            if own:
                lines += [head, *(_row(c) for c in own), ""]
    return "\n".join(lines)


def replace_docs_block(text: str, block: str) -> str:
    """`text` with the section between the `DOCS_MARKS` replaced by `block`."""
    start, end = DOCS_MARKS
    i, j = text.index(start) + len(start), text.index(end)
    return f"{text[:i]}\n{block}\n{text[j:]}"
