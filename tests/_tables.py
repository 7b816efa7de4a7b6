"""A run folder's tidy tables against its JSON record, checked the same way for every study, and `steer.load_run` on
it. Each study's own test module calls `check_tables` on the run folder it already makes (tests/test_tables.py
holds which test checks which study), so no study is run again for it.

The check reads the CSV with the csv module, not with the code under test, and holds every table to the record:

- its header is the columns tables.json declares, and those are the study's declaration (`Study.tables`);
- every value parses as its column's type; every number in a row of a maze is one of the numbers the run
  recorded for that maze (its cell's result and files), its spec's, or its report's (a number in no record would
  be made up or mangled), and a row of a table without mazes is held to the report;
- every value of a registry metric the cell recorded for a maze is in that maze's rows of mazes.csv (a metric
  left out would be lost), and the mazes in mazes.csv are the run's finished cells.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

import steer
from steer.analysis.metrics import METRICS
from steer.studies import STUDIES


def _numbers(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], float]]:
    """Every number in a JSON value with the keys leading to it (bools are not numbers here), a key that is a
    number too (a ladder's coefficients key its records)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if re.fullmatch(r"-?\d+(\.\d+)?", str(k)):
                yield path, float(k)
            yield from _numbers(v, (*path, str(k)))
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, float(value)


def _metric_numbers(result: dict[str, Any]) -> set[float]:
    """The registry metrics' values a cell recorded (a comparison metric's on the original side excepted: the
    tables leave it empty there, comparing the original with itself)."""
    out = set()
    for path, value in _numbers(result):
        names = [k for k in path if k in METRICS]
        if names and not (not METRICS[names[-1]].paired and "original" in path):
            out.add(value)
    return out


def _parse(kind: str, text: str) -> Any:
    if text == "":
        return None
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        assert text in ("true", "false"), text
        return text == "true"
    return text


def check_tables(folder: Path) -> steer.Run:
    """Every table of the run in `folder` against its record (see the module's docstring); returns `load_run`'s
    Run after checking its attributes against the same files."""
    manifest = json.loads((folder / "manifest.json").read_text())
    study = STUDIES[manifest["command"]]
    report = json.loads((folder / study.report_name).read_text())
    schema = json.loads((folder / "tables.json").read_text())["tables"]
    assert [t["name"] for t in schema] == [t.table.name for t in study.tables]
    cells = {int(k.removeprefix("seed-")): v for k, v in manifest["cells"].items() if v["status"] == "done"}
    spec_numbers = {v for _, v in _numbers(manifest["spec"])}
    body = {k: v for k, v in report.items() if k not in ("mazes", "pairs", "probes")}
    report_numbers = {v for _, v in _numbers(body)}
    per_maze: dict[int, set[float]] = {}
    for seed, cell in cells.items():
        files = [json.loads((folder / f).read_text()) for f in cell["files"] if f.endswith(".json")]
        per_maze[seed] = {v for _, v in _numbers([cell["result"], files])} | spec_numbers | report_numbers
    every = set().union(*per_maze.values()) | spec_numbers | report_numbers | {v for _, v in _numbers(report)}
    tables = {}
    for declared, entry in zip(study.tables, schema, strict=True):
        columns = {c["name"]: c["type"] for c in entry["columns"]}
        assert [c.name for c in declared.table.columns] == list(columns)
        assert [c.type for c in declared.table.columns] == list(columns.values())
        with (folder / f"{entry['name']}.csv").open(newline="") as f:
            reader = csv.reader(f)
            assert next(reader) == list(columns)
            rows = [{k: _parse(columns[k], v) for k, v in zip(columns, line, strict=True)} for line in reader]
        assert rows, entry["name"]
        for row in rows:
            allowed = per_maze[row["seed"]] if "seed" in row else every
            for k, v in row.items():
                if columns[k] == "float" and v is not None and not math.isinf(v):
                    assert v in allowed, (entry["name"], k, v, row)
        tables[entry["name"]] = rows
    mazes = tables.get("mazes")
    if mazes is not None and "seed" in mazes[0]:
        assert {r["seed"] for r in mazes} == set(cells)
        for seed, cell in cells.items():
            written = {v for r in mazes if r["seed"] == seed for v in r.values() if isinstance(v, float)}
            assert _metric_numbers(cell["result"]) <= written, seed
    return _check_loaded(folder, manifest, report, schema, tables)


def _check_loaded(
    folder: Path, manifest: dict[str, Any], report: dict[str, Any], schema: list[dict[str, Any]], tables: dict
) -> steer.Run:
    run = steer.load_run(folder)
    assert run.command == manifest["command"] and run.spec == manifest["spec"] and run.report == report
    assert run.summary == report.get("summary", run.summary)
    assert set(manifest["reports"]) <= set(run.files) and "tables.json" in run.files
    assert run.tables == tuple(t["name"] for t in schema)
    dtypes = {"int": "Int64", "float": "float64", "str": "str", "bool": "boolean"}
    for entry in schema:
        frame = run.table(entry["name"])
        assert list(frame.columns) == [c["name"] for c in entry["columns"]]
        assert [str(frame[c["name"]].dtype) for c in entry["columns"]] == [dtypes[c["type"]] for c in entry["columns"]]
        rows = tables[entry["name"]]
        assert len(frame) == len(rows)
        for c in entry["columns"]:  # the same values, missing where the CSV is empty
            values = [None if pd.isna(v) else v for v in frame[c["name"]]]
            assert values == [r[c["name"]] for r in rows], c["name"]
    if "mazes" in run.tables:
        assert run.mazes.equals(run.table("mazes"))
    if run.figures:
        image = run.figure(run.figures[0].rsplit(".", 1)[0])  # by name, without its extension
        assert image.size[0] > 0 and image.size[1] > 0
    return run
