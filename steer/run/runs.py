"""Run folders: a manifest per output folder, per-cell status, resume, and overwrite protection.

A run is one command on one spec with one checkpoint. Its folder holds `manifest.json`: the spec, the
resolved cells (usually seeds), the checkpoint sha256, versions, git revision, start/end times and, per
cell, its status, files and result. While the run goes, each finished cell is appended to `cells.jsonl`
instead of rewriting the manifest (which would cost time quadratic in the number of seeds); the journal is
folded into the manifest when the run ends or is interrupted, and on resume after a hard kill. Re-running
the same run resumes: finished cells are reused, not recomputed. A folder that holds a different run (or
files steer did not write) is never overwritten without `force`.

What makes two runs "the same run" is their identity (see `run_identity`): the command, the normalised spec,
the checkpoint, the mode and the sha256 of every input file. A caller that leaves the cell list (seeds) out
of the identity lets a run grow: re-running with more seeds reuses the finished cells and computes the rest.

A run's process keeps each finished cell's record as the compact JSON it writes, not as Python objects (a
tenth of the memory), and reads it back only when asked (`record_of`, the runner's `CellResults`); the manifest
is written piece by piece. So a run of 10,000 mazes holds about 1 KB per maze, not the ~6 KB of a parsed record,
and never builds the manifest's text whole.

The manifest is read back from disk, so it is untrusted: a file name it lists is used only if it stays
inside the folder (`steer.io.inside`), both to reuse a finished cell and to delete old outputs on `force`; a
cell's record is reused only if it is the one steer wrote (its `check` hash, the cell's seed; see
`_valid_record`), else the cell is computed again; the output path is used as `steer.io.out_path` resolves it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt
from steer.io import (
    append_json_line,
    atomic_write_bytes,
    atomic_write_json,
    inside,
    json_safe,
    out_path,
    prepare_out_dir,
    read_json_lines,
)
from steer.version import __version__

MANIFEST = "manifest.json"
JOURNAL = "cells.jsonl"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _said(value: Any) -> str:
    """A value read from an old manifest, as text for a message: as is when short and printable, else an excerpt."""
    return value if isinstance(value, str) and len(value) <= 60 and value.isprintable() else excerpt(value, 60)


def git_revision() -> str | None:
    """The project's git commit, when it runs from a checkout; None for an installed copy."""
    root = Path(__file__).resolve().parents[2]  # steer/run/runs.py -> the project folder
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_identity(
    command: str, spec: Any, checkpoint_sha256: str, mode: str, inputs: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What makes two runs the same run, as a JSON-able mapping (hashed by `identity_hash`).

    `spec`: the spec as JSON-able values. Pass the *parsed* values (coefficients as floats, seeds as ints,
    ranges expanded), not the YAML text's, so equivalent specs (`coeff: -1` and `coeff: -1.0`) are one run;
    leave out what only lists cells (`seeds`) so that a run can grow. `inputs`: name -> sha256 of each input
    file the run reads besides the checkpoint (vector files; `steer.io.sha256_file`), so editing one makes a
    different run. Without inputs the identity (and so the fingerprint) is what steer wrote before inputs
    were hashed, so existing run folders still resume.
    """
    identity: dict[str, Any] = {"command": command, "spec": spec, "checkpoint": checkpoint_sha256, "mode": mode}
    if inputs:
        identity["inputs"] = dict(sorted(inputs.items()))
    return identity


def identity_hash(identity: Mapping[str, Any]) -> str:
    """The fingerprint of a run identity, with the steer version (a new version may compute differently)."""
    blob = json.dumps({**identity, "steer": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint(
    command: str, spec: Any, checkpoint_sha256: str, mode: str, inputs: Mapping[str, str] | None = None
) -> str:
    """What makes two runs the same run: command, spec, checkpoint, mode, input files and steer version."""
    return identity_hash(run_identity(command, spec, checkpoint_sha256, mode, inputs))


def _record_check(cell: str, rec: Mapping[str, Any]) -> str | None:
    """A hash of a cell's record as written to disk (NaN as null; JSON keeps key order), or None when the
    record cannot be written as JSON (nested too deeply, not JSON data)."""
    try:
        blob = json.dumps(json_safe([cell, rec.get("status"), rec.get("files"), rec.get("result")]))
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _valid_record(cell: str, rec: Any) -> bool:
    """Whether `rec` is a finished cell's record as `RunFolder.record` wrote it: status done or skipped, files a
    list of names, a result mapping whose int `seed` is the cell's (`seed-N`), and a `check` that matches.

    The record is read back from disk, so it is untrusted: one with no result, a result of another type or one
    missing the keys the study's report reads (an edit, a bad merge, a torn write) would crash the report.
    The check covers all of that at once; a record that fails is computed again, never an error.
    """
    if not isinstance(rec, dict) or rec.get("status") not in ("done", "skipped"):
        return False
    files, result = rec.get("files"), rec.get("result")
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        return False
    if not isinstance(result, dict):
        return False
    number = cell.removeprefix("seed-")
    seed = result.get("seed")
    if number != cell and not (type(seed) is int and str(seed) == number):
        return False
    check = rec.get("check")
    return isinstance(check, str) and check == _record_check(cell, rec)


def _compact(value: Any) -> bytes:
    return json.dumps(json_safe(value), separators=(",", ":")).encode()


@dataclass
class RunFolder:
    path: Path
    manifest: dict[str, Any]  # everything but the cells' records
    cells: dict[str, bytes]  # cell -> its record, as the compact JSON the manifest holds

    @classmethod
    def open(
        cls,
        path: Path,
        command: str,
        spec: Any,
        cells: list[str],
        provenance: dict[str, Any],
        force: bool = False,
        identity: Mapping[str, Any] | None = None,
    ) -> RunFolder:
        """Start, resume or (with `force`) replace the run in `path`.

        `identity` (from `run_identity`) says what makes this the same run as the one in the folder; when it
        leaves out the cells, a folder holding a run of fewer seeds is resumed: its finished cells among
        `cells` are reused. None: the identity is command, `spec` as given, checkpoint and mode.

        Kept whole: the folder's states (new, resumable, another run's, forced) are one decision."""
        sha = provenance["checkpoint"]["sha256"]
        given = identity is not None
        if identity is None:
            identity = run_identity(command, spec, sha, provenance["distribution_mode"])
        fp = identity_hash(identity)
        path = out_path(path)  # `NEW/..` is checked as the folder it lands in, where it lands
        shown = excerpt(str(path), 160)
        try:
            old = cls._read(path)
            if (path / JOURNAL).is_dir() and not (path / JOURNAL).is_symlink():
                raise SteerError(
                    f"--out: {shown} holds a folder {JOURNAL}, which steer did not write (its journal of finished "
                    "cells is a file of that name) and will not delete, even with --force. Move that folder away, "
                    "or choose another --out folder."
                )
            foreign = old is None and path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir())
        except (OSError, ValueError) as e:  # a name too long for the file system, a NUL byte, no permission
            raise SteerError(
                f"--out: {shown} cannot be used as the output folder ({getattr(e, 'strerror', None) or e}). "
                "Choose a shorter or plainer path you can write to."
            ) from None
        resumed: dict[str, Any] = {}
        if old is not None and old.get("fingerprint") == fp and not force:
            resumed = old["cells"] if isinstance(old.get("cells"), dict) else {}
        elif old is not None and not force:
            raise SteerError(
                f"--out: {shown} holds the results of a different run ({_said(old.get('command'))} of "
                f"{_said(old.get('spec_name', 'another spec'))}, started {_said(old.get('started'))}). Re-run with "
                "--force to replace them, or choose another --out folder."
            )
        elif foreign and not force:
            raise SteerError(
                f"--out: {shown} already holds files that steer did not write (no {MANIFEST}). Choose an "
                "empty or new folder, or re-run with --force to write there anyway."
            )
        path = prepare_out_dir(path)
        if old is not None and force:
            cls._remove_outputs(path, old)
        manifest = {
            "command": command,
            "spec_name": spec.get("name") if isinstance(spec, dict) else None,
            "spec": spec,
            "fingerprint": fp,
            **({"identity": dict(identity)} if given else {}),  # the default one only repeats the spec
            "cells_planned": cells,
            "checkpoint_sha256": sha,
            "provenance": provenance,
            "git_revision": git_revision(),
            "started": old.get("started") if resumed and old and isinstance(old.get("started"), str) else _now(),
            "resumed_at": _now() if resumed else None,
            "finished": None,
            "status": "running",
        }
        # Only records steer wrote as they are: anything else is computed again (and never written back). Cells
        # this run does not plan are kept too: a batch drawn again at its first size after it grew (samples.grow)
        # must not forget the cells its next, larger step reuses.
        cells = {k: _compact(v) for k, v in resumed.items() if _valid_record(k, v)}
        del old, resumed  # the parsed records: the run keeps their compact text only
        run = cls(path, manifest, cells)
        run._save()
        (path / JOURNAL).unlink(missing_ok=True)  # its cells are now in the manifest (or were a replaced run's)
        return run

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        f = path / MANIFEST
        if not f.is_file():
            return None
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError, RecursionError):  # RecursionError: nested past what json can parse
            return {"command": "unknown", "started": "unknown"}  # unreadable: treat as a different run
        if not isinstance(data, dict):
            return {"command": "unknown", "started": "unknown"}
        cells = data.setdefault("cells", {})
        if isinstance(cells, dict):  # cells the run finished after its manifest was last written
            cells.update(
                {
                    e["cell"]: e["record"]
                    for e in read_json_lines(path / JOURNAL)
                    if isinstance(e, dict) and isinstance(e.get("cell"), str) and isinstance(e.get("record"), dict)
                }
            )
        return data

    @staticmethod
    def _remove_outputs(path: Path, old: dict[str, Any]) -> None:
        """Delete the files the old manifest lists, only those inside `path`: `--force` must never delete
        `../victim`, an absolute path or a symlink's target outside the folder that an edited manifest names."""
        cells = old.get("cells")
        names = [
            name
            for cell in (cells.values() if isinstance(cells, dict) else [])
            if isinstance(cell, dict) and isinstance(cell.get("files"), list)
            for name in cell["files"]
        ]
        reports = old.get("reports")
        names += reports if isinstance(reports, list) else []
        for name in names:
            target = inside(path, name)
            if target is None or not target.is_file():
                continue
            try:
                target.unlink(missing_ok=True)
            except OSError as e:
                raise SteerError(
                    f"--out: could not remove the old output {excerpt(name)} in {str(path)!r} ({e.strerror or e}). "
                    "Fix the folder's permissions, or choose another --out folder."
                ) from None

    def _save(self) -> None:
        # The manifest's other keys indented as before; then "cells", one record per line, each the text kept in
        # memory: the whole manifest is never one string.
        head = json.dumps(json_safe(self.manifest), indent=1).encode()

        def write(f: Any) -> None:
            f.write(head[: head.rindex(b"}")].rstrip() + b',\n "cells": {')
            for i, (cell, record) in enumerate(self.cells.items()):
                f.write(b"%s\n  %s: %s" % (b"," if i else b"", json.dumps(cell).encode(), record))
            f.write(b"\n }\n}\n")

        atomic_write_bytes(self.path / MANIFEST, write)

    def record_of(self, cell: str) -> dict[str, Any] | None:
        """A cell's record as the manifest holds it (not checked: `finished` is for reuse), else None."""
        record = self.cells.get(cell)
        return None if record is None else json.loads(record)

    def cell_files(self) -> dict[str, list[str]]:
        """cell -> the files its record lists (each record decoded once)."""
        return {cell: json.loads(record)["files"] for cell, record in self.cells.items()}

    def page_manifest(self, files: dict[str, list[str]]) -> dict[str, Any]:
        """The manifest as report.html reads it: each cell with the files it wrote (`cell_files`), not its result."""
        return {**self.manifest, "cells": {cell: {"files": names} for cell, names in files.items()}}

    def finished(self, cell: str) -> dict[str, Any] | None:
        """The stored record of a cell that finished, else None (it is computed again).

        Finished means: a record as `record` wrote it (see `_valid_record`: status done or skipped, a list of
        file names, a result mapping for this cell's seed, and the check that it was not edited since), and
        every file it lists is present and inside the folder (a name leading out of it, e.g. an edited
        manifest's `../x` or a symlink, does not count as present). So a reused result always holds what the
        study's report reads.
        """
        rec = self.record_of(cell)
        if not _valid_record(cell, rec):
            return None
        for name in rec["files"]:
            target = inside(self.path, name)
            if target is None or not target.is_file():
                return None
        return rec

    def record(self, cell: str, status: str, files: list[str], result: Any) -> None:
        rec = {"status": status, "files": files, "result": result, "finished": _now()}
        rec["check"] = _record_check(cell, rec)
        append_json_line(self.path / JOURNAL, {"cell": cell, "record": rec})
        self.cells[cell] = _compact(rec)

    def complete(self, report: dict[str, Any], name: str = "metrics.json", figures: Sequence[str] = ()) -> None:
        """Write the run's report, then mark the run complete (a report present means the run finished)."""
        atomic_write_json(self.path / name, report)
        self.close("complete", reports=[name, *figures])

    def add_report(self, name: str) -> None:
        """List one more file made from the finished report (report.html), so `--force` removes it too."""
        self.manifest["reports"] = [*self.manifest.get("reports", []), name]
        self._save()

    def close(self, status: str, reports: list[str] | None = None) -> None:
        self.manifest["status"] = status
        self.manifest["finished"] = _now()
        if reports:
            self.manifest["reports"] = reports
        self._save()
        (self.path / JOURNAL).unlink(missing_ok=True)  # every cell in it is now in the manifest
