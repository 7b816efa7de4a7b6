"""The real CLI, in this process, for tests: `run("apply", spec, "--out", out)` and spec files to give it."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def run(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def write_spec(folder: Path, spec: object, name: str = "spec.yaml") -> Path:
    """A spec file in `folder`: `spec` dumped as YAML, or written as it is when it is already text."""
    path = folder / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path
