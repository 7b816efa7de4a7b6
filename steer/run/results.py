"""A finished run folder read back for a notebook: `load_run(path)` gives a `Run`, `compare_runs([...])` stacks runs.

    import steer
    run = steer.load_run("outputs/demo")           # a study's --out folder, or a batch's folder
    run.mazes.groupby("condition")["p_cheese_ds"].mean()
    run.figure("field-seed1")                      # a Pillow image: shows itself in a notebook
    batch = steer.load_run("outputs/reproduce")
    batch.claims, batch.experiments["cheese-100"].mazes
    steer.compare_runs([run, batch.experiments["cheese-2M"]])

A study's folder is read through its manifest.json (its spec, status, and the files the run wrote); its tables
through tables.json (each column's type, `steer.report.tables`); a batch's through batch.json and claims.json.
Every file name read from those files is confined to the folder (`steer.io.inside`): an edited manifest cannot
make a notebook read `../elsewhere`. pandas and Pillow are imported only when a table or a figure is asked for.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steer.errors import SteerError, excerpt
from steer.io import inside
from steer.report.tables import SCHEMA, Column, Table, typed_rows

if TYPE_CHECKING:  # imported when used: `import steer` stays light
    import pandas as pd
    from PIL import Image

MANIFEST, BATCH, CLAIMS_FILE = "manifest.json", "batch.json", "claims.json"
IMAGES = (".png", ".gif")
_DTYPES = {"int": "Int64", "float": "float64", "str": "str", "bool": "boolean"}  # nullable where it matters


def _shown(path: Path) -> str:
    return excerpt(str(path), 160)


def _read_json(folder: Path, name: Any, what: str) -> Any:
    """A JSON file the folder's own records name, confined to the folder; a SteerError saying what is wrong."""
    target = inside(folder, name)
    if target is None or not target.is_file():
        raise SteerError(
            f"load_run: {_shown(folder)} has no {excerpt(name)} ({what}) inside it; the folder is incomplete or was "
            "edited. Run the same command into it again to write it."
        )
    try:
        return json.loads(target.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise SteerError(
            f"load_run: {_shown(target)} ({what}) cannot be read as JSON ({getattr(e, 'strerror', None) or e}). "
            "Run the same command into the folder again to rewrite it."
        ) from None


class Run:
    """One finished run folder: a study's (`command` its name) or a batch's (`command` "batch").

    `spec`: the spec as the run was given it (a batch: batch.json without its experiments and claims); `report`:
    the study's report JSON whole (metrics.json, vectors.json, …; a batch: batch.json); `summary`: its summary
    over mazes (the report's `summary`, or the report without the per-maze records; a batch: its claims'
    verdicts counted); `files`: the files the run wrote, relative to `path`; `mazes` and `table(name)`: its tidy
    tables as DataFrames (a batch: every experiment's, stacked); `figure(name)`: a figure as a Pillow image;
    `claims` (a batch): one row per claim and sample; `experiments` (a batch): each experiment's `Run`, by folder.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        command: str,
        spec: dict[str, Any],
        report: dict[str, Any],
        files: Sequence[str],
        schema: Mapping[str, Any] | None,
        batch: Mapping[str, Any] | None,
        rerun: str = "",
    ) -> None:
        self.path, self.name, self.command = path, name, command
        self.spec, self.report, self.files = spec, report, tuple(files)
        self._schema, self._batch = schema, batch
        # How to write what an old run lacks: its own command again, or its batch's (an experiment's folder).
        self._rerun = rerun or f"`steer {command} SPEC --out {_shown(path)}`"

    def __repr__(self) -> str:
        return f"Run({self.command} {self.name!r} at {str(self.path)!r})"

    @property
    def is_batch(self) -> bool:
        return self._batch is not None

    @property
    def summary(self) -> dict[str, Any]:
        if self._batch is not None:
            verdicts = Counter(c.get("verdict") for c in self._claims_json())
            return {"claims": sum(verdicts.values()), "verdicts": dict(verdicts), "samples": self._batch.get("samples")}
        if isinstance(self.report.get("summary"), dict):
            return self.report["summary"]
        per_run = ("command", "spec", "provenance", "skipped", "reused_cells", "mazes", "figures")
        return {k: v for k, v in self.report.items() if k not in per_run}

    # -- tables --------------------------------------------------------------------------------------------

    @property
    def tables(self) -> tuple[str, ...]:
        """The names of the run's tables (`mazes`, …), as `table` takes them."""
        if self._batch is not None:
            return ("mazes",)
        listed = (self._schema or {}).get("tables")
        return (
            tuple(t["name"] for t in listed if isinstance(t, dict) and isinstance(t.get("name"), str))
            if isinstance(listed, list)
            else ()
        )

    @property
    def mazes(self) -> pd.DataFrame:
        """mazes.csv: one row per maze and condition (docs/outputs.md lists its columns); a batch: every
        experiment's, stacked, with `run` (the experiment's folder) and `sample` first."""
        if self._batch is not None:
            # Every experiment with a mazes table (a probe has none); an old run without tables says so.
            runs = [r for r in self.experiments.values() if r._schema is None or "mazes" in r.tables]
            frame = compare_runs(runs, [r.name for r in runs])
            samples = {e["folder"]: e.get("sample") for e in self._batch.get("experiments", [])}
            frame.insert(1, "sample", frame["run"].map(samples).astype("str"))
            return frame
        return self.table("mazes")

    def table(self, name: str) -> pd.DataFrame:
        """One of the run's tables (`tables` lists them) as a DataFrame, each column of its declared type."""
        import pandas as pd

        columns = self._columns(self._table_entry(name))
        path = inside(self.path, f"{name}.csv")
        if path is None or not path.is_file():
            raise SteerError(
                f"load_run: {_shown(self.path)} lists the table {name} but has no {name}.csv; run the same command "
                "into the folder again to write it (its finished cells are reused)."
            )
        return pd.read_csv(
            path,
            dtype={c.name: _DTYPES[c.type] for c in columns},
            keep_default_na=False,  # only an empty field is missing: a condition named "NA" stays a name
            na_values=[""],
            float_precision="round_trip",  # the same floats the run recorded (pandas' fast parser may differ by 1 ulp)
        )

    def _columns(self, entry: Mapping[str, Any]) -> list[Column]:
        """A table's columns as tables.json lists them; a file steer did not write that way is refused."""
        listed = entry.get("columns")
        ok = isinstance(listed, list) and all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and c.get("type") in _DTYPES for c in listed
        )
        if not ok:
            raise SteerError(
                f"load_run: {_shown(self.path / SCHEMA)} does not list the columns of {excerpt(entry.get('name'))} as "
                f"steer writes them (a name and a type of {', '.join(_DTYPES)} each); run it again ({self._rerun})."
            )
        return [Column(c["name"], c["type"], str(c.get("unit", "")), str(c.get("about", ""))) for c in listed]

    def _table_entry(self, name: str) -> Mapping[str, Any]:
        if self._schema is None:
            raise SteerError(
                f"load_run: {_shown(self.path)} has no tables: its run was written by a steer from before runs wrote "
                f"them. Run it again ({self._rerun}): its finished cells are reused and the tables written beside "
                "its report."
            )
        for entry in self._schema.get("tables", []):
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
        have = ", ".join(self.tables) or "none"
        raise SteerError(
            f"load_run: the {self.command} run at {_shown(self.path)} has no table {name!r}; its tables: {have}."
        )

    # -- figures -------------------------------------------------------------------------------------------

    @property
    def figures(self) -> tuple[str, ...]:
        """The run's images (PNG and GIF), as `figure` takes them."""
        return tuple(f for f in self.files if f.endswith(IMAGES))

    def figure(self, name: str) -> Image.Image:
        """A figure of the run as a Pillow image (a notebook shows it): its file name, with or without `.png`."""
        from PIL import Image

        wanted = [name] if name.endswith(IMAGES) else [name + ext for ext in IMAGES]
        found = next((f for f in wanted if f in self.figures), None)
        path = inside(self.path, found) if found else None
        if path is None or not path.is_file():
            listed = ", ".join(self.figures[:40]) + (", …" if len(self.figures) > 40 else "") or "none"
            raise SteerError(
                f"figure: {excerpt(name)} is not a figure of the run at {_shown(self.path)}. Its figures: {listed}."
            )
        image = Image.open(path)
        if not getattr(image, "is_animated", False):
            image.load()  # the pixels read now, the file closed (a GIF's frames are read as they are shown)
        return image

    # -- a batch -------------------------------------------------------------------------------------------

    def _not_a_batch(self, what: str) -> SteerError:
        return SteerError(
            f"{what}: the run at {_shown(self.path)} is a single {self.command} run, not a batch; load a batch's "
            "folder (the one holding batch.json) for its claims and experiments."
        )

    @cached_property
    def experiments(self) -> dict[str, Run]:
        """A batch's experiments by folder (`cheese-100`, `replication/cheese-100`), each loaded when first asked."""
        if self._batch is None:
            raise self._not_a_batch("experiments")
        out: dict[str, Run] = {}
        for e in self._batch.get("experiments", []):
            folder = inside(self.path, e.get("folder"))
            if folder is None:
                raise SteerError(
                    f"load_run: {_shown(self.path / BATCH)} names an experiment folder outside the batch's folder "
                    f"({excerpt(e.get('folder'))}); the file was edited. Run the batch again to rewrite it."
                )
            rerun = f"the batch: `steer batch BATCH_FILE --out {_shown(self.path)}`"
            out[e["folder"]] = _load_study(folder, e["folder"], rerun)
        return out

    def _claims_json(self) -> list[dict[str, Any]]:
        if CLAIMS_FILE not in self.files:
            return []
        claims = _read_json(self.path, CLAIMS_FILE, "the batch's claims")
        return [c for c in claims if isinstance(c, dict)] if isinstance(claims, list) else []

    @property
    def claims(self) -> pd.DataFrame:
        """A batch's claims, one row per claim and sample (columns: `CLAIMS`, docs/api.md)."""
        import pandas as pd

        if self._batch is None:
            raise self._not_a_batch("claims")
        rows = list(typed_rows(CLAIMS, claim_rows(self._claims_json())))
        frame = pd.DataFrame(rows, columns=[c.name for c in CLAIMS.columns])
        return frame.astype({c.name: _DTYPES[c.type] for c in CLAIMS.columns})


# -- a batch's claims, as a table -------------------------------------------------------------------------------

SAMPLES = ("discovery", "replication", "pooled")
CLAIMS = Table(
    "claims",
    "one row per claim and sample (a batch of one sample: one row per claim, sample `all`)",
    (
        Column("id", "str", "", "the claim's id in the batch file"),
        Column("sample", "str", "", "discovery, replication or pooled (every maze of both); all for one sample"),
        Column("post", "str", "", "the sentence the claim tests"),
        Column("criterion", "str", "", "the criterion in words"),
        Column("statistic", "str", "", "mean or median: the statistic judged"),
        Column("verdict", "str", "", "the claim's verdict (both samples together)"),
        Column("sample_verdict", "str", "", "this sample's verdict (empty for pooled)"),
        Column("n", "int", "mazes", "mazes measured (a contrast: both groups)"),
        Column("estimate", "float", "", "the judged statistic (of the measure minus its control, if judged so)"),
        Column("ci_low", "float", "", "its 95% interval"),
        Column("ci_high", "float", "", "its 95% interval"),
        Column("mde", "float", "", "the effect detectable at this n with 80% power"),
        Column("wilcoxon_p", "float", "", "Wilcoxon signed-rank p (paired measures)"),
        Column("wilcoxon_p_holm", "float", "", "Holm-adjusted over the batch's findings"),
        Column("sanity", "bool", "", "a check that the instrument works, not a finding"),
        Column("expect", "str", "", "the verdict the batch file expected"),
        Column("as_expected", "bool", "", "the verdict is the expected one"),
    ),
    written=False,
)


def _sample_row(claim: Mapping[str, Any], sample: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
    measured = record.get("measured")
    if not isinstance(measured, dict):
        return None
    stat = claim.get("statistic") or "mean"
    ci = measured.get(f"{stat}_ci") or (None, None)
    n = measured.get("n", measured.get("n_groups"))
    return {
        "sample": sample,
        "sample_verdict": record.get("verdict") if sample != "pooled" else None,
        "n": sum(n) if isinstance(n, list) else n,
        "estimate": measured.get(stat),
        "ci_low": ci[0],
        "ci_high": ci[1],
        "mde": measured.get("mde"),
        "wilcoxon_p": measured.get("wilcoxon_p"),
        "wilcoxon_p_holm": record.get("wilcoxon_p_holm"),
    }


def claim_rows(claims: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """claims.json's records as `CLAIMS` rows: per claim, a row for each sample that measured it."""
    for c in claims:
        head = {k: c.get(k) for k in ("id", "post", "criterion", "statistic", "verdict", "sanity", "expect")}
        head["as_expected"] = c.get("as_expected")
        samples = [(s, c[s]) for s in SAMPLES if isinstance(c.get(s), dict)] or [("all", c)]
        for sample, record in samples:
            row = _sample_row(c, sample, record)
            if row is not None:
                yield {**head, **row}


# -- loading -------------------------------------------------------------------------------------------------


def _load_study(folder: Path, name: str, rerun: str = "") -> Run:
    manifest = _read_json(folder, MANIFEST, "the run's manifest")
    if not isinstance(manifest, dict):
        raise SteerError(f"load_run: {_shown(folder / MANIFEST)} is not a run's manifest; run the command again.")
    status = manifest.get("status")
    if status != "complete":
        said = status if isinstance(status, str) and status.isidentifier() else excerpt(status, 40)
        raise SteerError(
            f"load_run: the run at {_shown(folder)} has not finished (its status is {said}). Run the same "
            "command into the folder again to finish it (its finished cells are reused), then load it."
        )
    reports = [r for r in manifest.get("reports") or [] if isinstance(r, str)]
    if not reports:
        raise SteerError(f"load_run: {_shown(folder / MANIFEST)} lists no report; run the same command again.")
    cells = manifest.get("cells")
    cell_files = [
        f
        for rec in (cells.values() if isinstance(cells, dict) else [])
        if isinstance(rec, dict) and isinstance(rec.get("files"), list)
        for f in rec["files"]
        if isinstance(f, str)
    ]
    # Only names that stay inside the folder: the manifest is a file anyone could have edited.
    files = sorted({f for f in [MANIFEST, *reports, *cell_files] if inside(folder, f) is not None})
    report = _read_json(folder, reports[0], "the run's report")
    schema = _read_json(folder, SCHEMA, "the run's table columns") if SCHEMA in reports else None
    schema = schema if isinstance(schema, dict) else None if schema is None else {"tables": []}
    spec = manifest.get("spec") if isinstance(manifest.get("spec"), dict) else {}
    return Run(folder, name, str(manifest.get("command")), spec, report, files, schema, None, rerun)


def _load_batch(folder: Path) -> Run:
    record = _read_json(folder, BATCH, "the batch's record")
    if not isinstance(record, dict) or not isinstance(record.get("experiments"), list):
        raise SteerError(f"load_run: {_shown(folder / BATCH)} is not a batch's record; run the batch again.")
    files = sorted(
        p.name for p in folder.iterdir() if not p.name.startswith(".") and inside(folder, p.name) and p.is_file()
    )
    spec = {k: v for k, v in record.items() if k not in ("experiments", "claims")}
    return Run(folder, folder.name, "batch", spec, record, files, None, record)


def load_run(path: str | Path) -> Run:
    """The finished run in `path`: a study's `--out` folder (it holds manifest.json) or a batch's (batch.json)."""
    folder = Path(path)
    if not folder.is_dir():
        raise SteerError(
            f"load_run: {_shown(folder)} is not a folder. Give the folder a steer command wrote (its --out, "
            "holding manifest.json) or a batch's folder (holding batch.json)."
        )
    folder = folder.resolve()
    if (folder / BATCH).is_file():
        return _load_batch(folder)
    if not (folder / MANIFEST).is_file():
        raise SteerError(
            f"load_run: {_shown(folder)} is not a run folder: it holds neither manifest.json (a study's run) nor "
            "batch.json (a batch's). Give the --out folder of a steer command."
        )
    return _load_study(folder, folder.name)


def compare_runs(runs: Iterable[Run | str | Path], names: Sequence[str] | None = None) -> pd.DataFrame:
    """Runs' mazes tables stacked, a `run` column first (each run's folder name, or `names`); columns one run
    lacks are empty in its rows."""
    import pandas as pd

    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    labels = list(names) if names is not None else [r.name for r in loaded]
    if len(labels) != len(loaded):
        raise SteerError(f"names: {len(labels)} names for {len(loaded)} runs; give one name per run.")
    if len(set(labels)) != len(labels):
        twice = sorted({n for n in labels if labels.count(n) > 1})
        raise SteerError(f"compare_runs: two runs are named {', '.join(twice)}; pass names=[…], one per run.")
    frames = [r.mazes.assign(run=label) for r, label in zip(loaded, labels, strict=True)]
    if not frames:
        return pd.DataFrame({"run": pd.Series(dtype="str")})
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["run", *(c for c in stacked.columns if c != "run")]]
