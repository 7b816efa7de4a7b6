"""Reading inputs safely and writing results so that a reader never sees a half-written file.

Every output goes to a temporary file in the destination folder and is renamed into place; a rename
within one folder is atomic, so an interrupted run leaves either the old file, the new one, or none.

Inputs come from files a user may have been sent: `load_yaml` bounds what a YAML file can make steer do
(size, alias expansion, nesting), and `inside` confines a file name read from a manifest to its folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

from steer.errors import SteerError, excerpt

MAX_YAML_BYTES = 1 << 20  # a spec or batch file is a few hundred bytes; 1 MiB still lists 100,000 seeds
MAX_YAML_ALIASES = 100  # `*name` uses in one file
MAX_YAML_ALIAS_NODES = 10_000  # values that aliases may add once expanded (a "billion laughs" adds 10^9)
MAX_YAML_DEPTH = 64  # nested lists/mappings; PyYAML composes recursively and would hit RecursionError


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


Writer = Callable[[IO[bytes]], None]  # writes a file's bytes piece by piece, e.g. a table row by row


def atomic_write_bytes(path: Path, data: bytes | Writer) -> None:
    """Write `data` (bytes, or a function that writes them to the file it is given, so that a large file is never
    whole in memory) to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, tmp = create_temp(path.parent, path.name)
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
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
    """The whole lines of a file written by `append_json_line`; a torn, garbled or too deeply nested line is
    skipped."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except (ValueError, RecursionError):
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


json_safe = _clean  # a value as `append_json_line` and `atomic_write_json` write it


def atomic_write_json(path: Path, obj: Any, compact: bool = False) -> None:
    """Indented for people to read; `compact` for bulk arrays (json's C encoder only runs without indent)."""
    text = json.dumps(_clean(obj), separators=(",", ":")) if compact else json.dumps(_clean(obj), indent=1)
    atomic_write_bytes(path, (text + "\n").encode())


def out_path(path: Path) -> Path:
    """The output folder `path` names, as every check and write must use it: absolute, with `.` and `..`
    removed and the links among its parents resolved, so `NEW/..` is the folder it lands in, not a folder
    `NEW` to create. The last component is kept as given (a link there is the caller's to check or refuse).
    """
    try:
        absolute = Path(os.path.abspath(path))  # `..` removed as written: `ghost/..` needs no folder `ghost`
        return absolute.parent.resolve() / absolute.name if absolute.name else absolute
    except (OSError, RuntimeError, ValueError) as e:  # a link loop, a name too long, a NUL byte
        raise SteerError(
            f"--out: {excerpt(str(path), 160)} cannot be used as a folder name "
            f"({getattr(e, 'strerror', None) or e}). Choose a shorter or plainer path."
        ) from None


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder (see `out_path`), or say clearly why it cannot be used."""
    path = out_path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise SteerError(
            f"--out: cannot write to {str(path)!r} ({e.strerror or e}). Choose a folder you can write to."
        ) from None
    return path


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inside(folder: Path, name: Any) -> Path | None:
    """The resolved path `name` names inside `folder`, or None when it does not stay strictly inside.

    `name` comes from a file steer once wrote but anyone could have edited (a manifest), so it is confined:
    it must be a non-empty relative path string, and once `..` and symlinks (in any component, the last
    included) are resolved it must lie below the resolved folder. None for an absolute path, `../x`, a
    link leading out of the folder, the folder itself, or a non-string.
    """
    if not isinstance(name, str) or not name or "\0" in name:
        return None
    rel = Path(name)
    if rel.is_absolute() or rel.anchor:
        return None
    try:
        root = Path(folder).resolve()
        target = (root / rel).resolve()
    except (OSError, RuntimeError):  # a symlink loop, or a name the file system refuses
        return None
    if target == root or not target.is_relative_to(root):
        return None
    return target


# -- YAML ------------------------------------------------------------------------------------------


class _Refused(Exception):
    """A YAML file that parses but asks for more than steer allows; carries where it happened."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with budgets on aliases and nesting, checked while the document is composed.

    PyYAML shares the object an alias refers to, so loading a "billion laughs" file is quick; the cost
    comes later, when anything walks the structure (validation, an error message, hashing the spec). So
    every alias is charged the number of values it stands for once expanded, and the file is refused as
    soon as the total passes a small budget, before the structure exists.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._alias_nodes = 0
        self._depth = 0
        self._open: set[str] = set()  # anchors of collections still being composed (an alias to one recurses)
        self._sizes: dict[int, int] = {}

    def _size(self, node: yaml.Node) -> int:
        """Values in `node` once every alias in it is expanded (memoised: aliased nodes are shared)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor
            if anchor in self._open:
                problem = f"the alias *{anchor[:40]} refers to a list or mapping that contains it"
                raise _Refused(f"{problem}; write the values out instead", event.start_mark)
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _Refused(
                    f"it uses more than {MAX_YAML_ALIASES} aliases (*name); write the values out instead",
                    event.start_mark,
                )
            if anchor in self.anchors:  # an undefined alias is left to PyYAML's own error
                self._alias_nodes += self._size(self.anchors[anchor])
                if self._alias_nodes > MAX_YAML_ALIAS_NODES:
                    raise _Refused(
                        f"its aliases would expand to more than {MAX_YAML_ALIAS_NODES} values; write the values "
                        "out, or use a seed range {from: A, to: B} for many seeds",
                        event.start_mark,
                    )
            return super().compose_node(parent, index)
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _Refused(f"lists and mappings are nested more than {MAX_YAML_DEPTH} deep", event.start_mark)
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def load_yaml(path: Path, what: str, hint: str = "") -> Any:
    """The data of a YAML file a user gave (None when empty), or one short SteerError saying why not.

    Refused, each with a message starting `{what}: `: a missing path, a folder, an unreadable file, more
    than MAX_YAML_BYTES, bytes that are not UTF-8, invalid YAML (with its line and column), tags beyond
    YAML's plain types, and files whose aliases would expand past MAX_YAML_ALIAS_NODES values (or use
    more than MAX_YAML_ALIASES, refer to themselves, or nest past MAX_YAML_DEPTH). Ordinary small aliases
    (`base: &b {...}` then `<<: *b`) load as usual. `hint` is added to the messages about a missing file.
    """
    path = Path(path)
    shown = excerpt(str(path), 160)
    tail = f" {hint}" if hint else ""
    try:
        if path.is_dir():
            raise SteerError(f"{what}: {shown} is a folder, not a YAML file. Give the path of a .yaml file.{tail}")
        with path.open("rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)  # bounded: the file may be huge, or a pipe that never ends
    except FileNotFoundError:
        raise SteerError(f"{what}: {shown} does not exist.{tail}") from None
    except OSError as e:
        raise SteerError(f"{what}: cannot read {shown} ({e.strerror or type(e).__name__}).") from None
    if len(raw) > MAX_YAML_BYTES:
        raise SteerError(
            f"{what}: {shown} is larger than {MAX_YAML_BYTES // (1 << 20)} MiB; steer reads YAML files up to that "
            "size. Use a seed range ({from: A, to: B}) instead of long lists."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise SteerError(
            f"{what}: {shown} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}, at offset {e.start}). "
            "Save it as UTF-8."
        ) from None
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text.removeprefix("\ufeff"))  # its reader already refuses control characters
        return loader.get_single_data()
    except _Refused as e:
        raise SteerError(f"{what}: {shown} is refused{_at(e.problem_mark)}: {e.problem}.") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or (str(e).splitlines() or ["no detail"])[0]
        context = getattr(e, "context", None)
        if context and problem.startswith("but "):  # "expected a single document in the stream, but found …"
            problem = f"{context}, {problem}"
        problem = problem if len(problem) <= 120 else problem[:120] + "…"
        raise SteerError(f"{what}: {shown} is not valid YAML{_at(mark)}: {problem}.") from None
    except (ValueError, TypeError, OverflowError) as e:  # a typed scalar that does not parse: `!!int abc`
        problem = str(e) if len(str(e)) <= 120 else str(e)[:120] + "…"
        raise SteerError(f"{what}: {shown} is not valid YAML: {problem}.") from None
    except RecursionError:  # a guard in case nesting slips past MAX_YAML_DEPTH (e.g. inside a flow scalar)
        raise SteerError(f"{what}: {shown} nests too deeply to read.") from None
    finally:
        if loader is not None:
            loader.dispose()
