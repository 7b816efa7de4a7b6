"""Writing results so that a reader never sees a half-written file.

Every output goes to a temporary file in the destination folder and is renamed into place; a rename
within one folder is atomic, so an interrupted run leaves either the old file, the new one, or none.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from steer.errors import SteerError


def _write_error(path: Path, e: OSError) -> SteerError:
    # A full disk or lost permissions mid-run: every file written so far is complete, so say how to resume.
    return SteerError(
        f"--out: could not write {str(path)!r} ({e.strerror or e}). Files written before it are complete; "
        "free some space (or fix the folder's permissions) and run the same command again to resume."
    )


def create_temp(folder: Path, name: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new, empty, hidden file beside where `name` will go: (open write descriptor, its path).

    Unlike `tempfile.mkstemp` (always mode 0600) the file is created with mode 0666 and the kernel applies
    the user's umask (and a folder's default ACL), so a renamed-into-place output gets the permissions any
    other new file of this user would. Letting the kernel apply it avoids reading the umask, which can only
    be done by setting it, a race with the worker threads that write files too.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = Path(folder) / f".{name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name!r} in {str(folder)!r}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, tmp = create_temp(path.parent, path.name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise _write_error(path, e) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def append_json_line(path: Path, obj: Any) -> None:
    """Append one JSON line and sync it. A crash can tear only this last line, which readers skip."""
    try:
        with open(path, "ab") as f:
            f.write((json.dumps(_clean(obj)) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _write_error(Path(path), e) from None


def read_json_lines(path: Path) -> list[Any]:
    """The whole lines of a file written by `append_json_line`; a torn or garbled line is skipped."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf; write them as null rather than emitting invalid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def atomic_write_json(path: Path, obj: Any, compact: bool = False) -> None:
    """Indented for people to read; `compact` for bulk arrays (json's C encoder only runs without indent)."""
    text = json.dumps(_clean(obj), separators=(",", ":")) if compact else json.dumps(_clean(obj), indent=1)
    atomic_write_bytes(path, (text + "\n").encode())


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder, or say clearly why it cannot be used."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise SteerError(
            f"--out: cannot write to {str(path)!r} ({e.strerror or e}). Choose a folder you can write to."
        ) from None
    return path
