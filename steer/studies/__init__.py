"""The study registry: every module in this package that declares `STUDY` is a `steer` command.

Adding a study is adding one module here (docs/adding-a-study.md); the CLI, `batch` and the public API find
it through `STUDIES`, and `run_spec` runs one by name. The runner below (`steer.run.runner`) is handed a
`Study` and never looks one up, so the registry imports the runner and not the other way round.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from steer.errors import SteerError
from steer.report.tables import Table, docs_block, replace_docs_block
from steer.run.executors import check_executor
from steer.run.results import CLAIMS
from steer.run.runner import run_study
from steer.run.session import open_session
from steer.run.study import Study


def _discover() -> dict[str, Study]:
    found: dict[str, Study] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        study = getattr(module, "STUDY", None)
        if isinstance(study, Study):
            if study.name in found:
                raise RuntimeError(f"two studies are named {study.name!r}")  # a programming error, not a user's
            found[study.name] = study
    return found


STUDIES: dict[str, Study] = _discover()


def study_for(command: str) -> Study:
    """The study `steer <command>` runs, or a SteerError listing them."""
    if command not in STUDIES:
        raise SteerError(f"command: {command!r} is not a study. Studies: {', '.join(STUDIES)}.")
    return STUDIES[command]


def run_spec(
    command: str,
    spec: str | Path,
    out: str | Path | None = None,
    checkpoint: str | None = None,
    device: str = "cpu",
    force: bool = False,
    workers: int | None = 1,
    executor: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Load a spec file and run it as the study `command` (`apply`, `sweep-coeff`, …) into `out`."""
    study = study_for(command)
    parsed = study.load(spec)
    check_executor(executor, address)  # before the checkpoint loads
    session = open_session(parsed, checkpoint, device)
    folder = Path(out) if out else Path("outputs") / parsed.name
    return run_study(study, parsed, session, folder, force=force, workers=workers, executor=executor, address=address)


def documented_tables() -> dict[str, list[Table]]:
    """Every table a run writes, by command, and a batch's claims as `load_run` gives them: docs/outputs.md's list."""
    return {
        **{name: [t.table for t in study.tables] for name, study in STUDIES.items()},
        "load_run(batch).claims": [CLAIMS],
    }


def write_tables_doc(path: str | Path) -> None:
    """Regenerate the columns section of docs/outputs.md (`make tables-doc`) from the declarations."""
    doc = Path(path)
    doc.write_text(replace_docs_block(doc.read_text(), docs_block(documented_tables())))
