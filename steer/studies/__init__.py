"""The study registry: every module in this package that declares `STUDY` is a `steer` command.

Adding a study is adding one module here (see README, "Adding a study"); the CLI, `batch` and the public
API find it through `STUDIES`.
"""

from __future__ import annotations

import importlib
import pkgutil

from steer.errors import SteerError
from steer.study import Study


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
