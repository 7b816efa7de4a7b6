"""A scripted fuzz pass: hostile or careless inputs fed to the real `steer` command line.

Every case builds its inputs in a private sandbox (a tmp folder holding `in/` for inputs, `cwd/` as the working
folder, `victim.txt` beside the output folder `out/`), runs the CLI, and checks the same contract:

- exit code 2 for a user error, 0 where the input is actually valid; never a traceback (in process: the
  CliRunner result carries no exception but SystemExit);
- one short message (under MAX_OUTPUT characters), an `error: ` line for errors;
- nothing written outside `--out` (a before/after listing of the whole sandbox), and for errors refused before
  any work, nothing written at all (README: "leaves no output folder or partial file behind");
- bounded time, and for the bomb/huge cases (run as real processes in parallel, under a watchdog) bounded
  peak RSS (tests/_watchdog.py).

Most cases run in process with CliRunner (a CLI process costs ~3 s of start-up); the `proc` cases start when
this module starts, in the background, so their start-up overlaps the in-process cases.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from _harness import LAYER, Evil, alias_bomb, save_vector_file
from _watchdog import RSS_LIMIT_KIB, Outcome, Watched, watchdog
from typer.testing import CliRunner

from cli.main import app
from steer.net import checkpoints
from steer.net.tensor_files import tensor_file_bytes
from steer.net.vector_files import FORMAT

MAX_OUTPUT = 2000  # characters of console output a refused input may produce
INPROC_SECONDS = 30  # no in-process case may take longer than this
MAX_PARALLEL = 3  # process cases running at once (each starts torch: ~3 s of CPU)
GOOD: dict[str, Any] = {"seeds": [1], "vector": {"kind": "cheese"}, "coeff": -1}

runner = CliRunner()


# -- shared, lazily built inputs --------------------------------------------------------------------


class Shared:
    """What several cases need and is worth building once: the real weights and one finished run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._state: dict[str, torch.Tensor] | None = None
        self._run: Path | None = None

    def state(self) -> dict[str, torch.Tensor]:
        if self._state is None:
            policy = checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy
            self._state = {k: v.detach().clone().contiguous() for k, v in policy.state_dict().items()}
        return {k: v.clone() for k, v in self._state.items()}

    def finished_run(self) -> Path:
        """A complete `steer apply` run of GOOD (seed 1), to copy and tamper with."""
        if self._run is None:
            spec = self.folder / "good.yaml"
            spec.write_text(yaml.safe_dump(GOOD))
            out = self.folder / "run"
            result = runner.invoke(app, ["apply", str(spec), "--out", str(out)])
            assert result.exit_code == 0, result.output
            self._run = out
        return self._run


# -- the sandbox --------------------------------------------------------------------------------------


class Sandbox:
    def __init__(self, root: Path, shared: Shared) -> None:
        self.root, self.shared = root, shared
        self.inputs = root / "in"
        self.inputs.mkdir(parents=True)
        self.cwd = root / "cwd"
        self.cwd.mkdir()
        (self.cwd / "notes.txt").write_text("a file of the user's; not steer's")
        self.out = root / "out"
        self.victim = root / "victim.txt"
        self.victim.write_text("keep me")

    def file(self, name: str, content: Any) -> Path:
        """An input file: bytes and str as they are, anything else as YAML."""
        path = self.inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    def spec(self, content: Any, name: str = "spec.yaml") -> str:
        return str(self.file(name, content))

    def vector(self, name: str = "vec.pt", **fields: Any) -> str:
        return str(save_vector_file(self.inputs / name, **fields))

    def checkpoint(self, name: str, obj: Any) -> str:
        path = self.inputs / name
        torch.save(obj, path)
        return str(path)

    def copy_finished_run(self) -> str:
        """`out/` holding a finished run of GOOD; returns a spec file of the same run."""
        shutil.copytree(self.shared.finished_run(), self.out, symlinks=True)
        return self.spec(GOOD)

    def edit_manifest(self, edit: Callable[[dict[str, Any]], None]) -> None:
        path = self.out / "manifest.json"
        manifest = json.loads(path.read_text())
        edit(manifest)
        path.write_text(json.dumps(manifest))

    def snapshot(self) -> dict[str, tuple[Any, ...]]:
        """Every entry below the sandbox root (links not followed): kind, size, mtime."""
        entries: dict[str, tuple[Any, ...]] = {}
        for folder, dirs, files in os.walk(self.root):
            for name in dirs + files:
                path = Path(folder, name)
                st = path.lstat()
                rel = path.relative_to(self.root).as_posix()
                if path.is_symlink():
                    entries[rel] = ("link", os.readlink(path))
                elif path.is_dir():
                    entries[rel] = ("dir",)
                else:
                    entries[rel] = ("file", st.st_size, st.st_mtime_ns)
        return entries


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def outside(changed: list[str], allowed: tuple[str, ...]) -> list[str]:
    return [p for p in changed if not any(p == a or p.startswith(a + "/") for a in allowed)]


# -- cases ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Sandbox], list[str]]  # the CLI arguments, after writing the inputs
    expect: tuple[int, ...] = (2,)  # acceptable exit codes
    says: tuple[str, ...] = ()  # text the output must contain
    never_says: tuple[str, ...] = ()
    proc: bool = False  # a real process, in the background, under the watchdog (time + RSS)
    timeout: float = 60
    allowed: tuple[str, ...] = ("out",)  # sandbox paths a run may write
    untouched: bool | None = None  # nothing at all written; default: for refused (exit 2) cases
    usage: bool = False  # a command-line usage error, reported by Typer (not steer's `error: ` line)
    check: Callable[[Sandbox, Outcome], None] | None = None  # anything else to assert afterwards


CASES: list[Any] = []


def case(id: str, build: Callable[[Sandbox], list[str]], *, marks: Any = (), **kw: Any) -> None:
    CASES.append(pytest.param(Case(id, build, **kw), id=id, marks=marks))


def spec_case(id: str, spec: Any, *, command: str = "apply", extra: tuple[str, ...] = (), **kw: Any) -> None:
    """A case that is one spec (a mapping, YAML text or bytes) run as `steer <command> SPEC --out out`."""
    case(id, lambda sb: [command, sb.spec(spec), "--out", str(sb.out), *extra], **kw)


def _laughs(key: str) -> str:
    """A spec whose `key` is a "billion laughs" (9 lists of 9 aliases each: 9**9 values once expanded)."""
    rest = "".join(f"{k}: {json.dumps(v)}\n" for k, v in GOOD.items() if k != key)
    return rest + alias_bomb(key)


BIG_LIST = "[" + ", ".join(["1"] * 30_000) + "]"  # 90 KB of YAML: a value no message should echo whole

# YAML specs: bombs and huge files (real processes: time and peak RSS are measured)
for _key in ("seeds", "name", "vector", "target_edits"):
    spec_case(f"yaml-alias-bomb-in-{_key}", _laughs(_key), proc=True, says=("aliases would expand",))
spec_case(
    "yaml-alias-bomb-in-coeffs",
    _laughs("coeffs").replace("coeff: -1\n", ""),
    command="sweep-coeff",
    proc=True,
    says=("aliases would expand",),
)
spec_case("yaml-2MiB-file", "seeds: [1]\n" + "# padding\n" * 220_000, proc=True, says=("larger than 1 MiB",))
spec_case(
    "yaml-1MiB-seed-list-bad-last-seed",
    "vector: {kind: cheese}\ncoeff: -1\nseeds: [" + ", ".join(map(str, range(120_000))) + ", -1]\n",
    proc=True,
    says=("seeds[120000]: -1 is out of range",),
)

# YAML specs: the wrong shape of document
spec_case("spec-binary-junk", bytes(range(256)) * 64, says=("is not UTF-8",))
spec_case("spec-nul-bytes", "seeds: [1]\x00\x00\n", says=("is not valid YAML",))
spec_case("spec-is-a-30k-item-list", BIG_LIST + "\n", says=("expected a mapping",))
spec_case("spec-is-an-int", "42\n", says=("expected a mapping",))
spec_case("spec-is-a-500k-char-string", "x" * 500_000 + "\n", says=("expected a mapping",))
spec_case("spec-nested-100k-lists", "seeds: " + "[" * 100_000 + "]" * 100_000 + "\n", says=("nested more than",))
spec_case(
    "spec-nested-100k-mappings", "seeds: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", says=("nested more than",)
)
case("spec-is-a-folder", lambda sb: ["apply", str(sb.inputs), "--out", str(sb.out)], says=("is a folder",))
spec_case(
    "key-unicode-and-bell",
    'seeds: [1]\nvector: {kind: cheese}\ncoeff: -1\n"s\\u00e9eds\\a": 1\n',
    says=("unknown key",),
)
spec_case(
    "key-with-terminal-escapes",
    'seeds: [1]\nvector: {kind: cheese}\ncoeff: -1\n"\\e]0;pwned\\a\\e[2J\\u202e": 1\n',
    says=("unknown key",),
    never_says=("\x1b",),
)

# seeds
spec_case("seeds-huge-int", {**GOOD, "seeds": [10**30]}, says=("seeds[0]", "out of range"))
spec_case("seeds-5000-digit-int", "vector: {kind: cheese}\ncoeff: -1\nseeds: [" + "9" * 5000 + "]\n", says=("spec: ",))
spec_case("seeds-float", {**GOOD, "seeds": [1e3]}, says=("seeds[0]: expected an integer",))
spec_case("seeds-bool", {**GOOD, "seeds": [True]}, says=("seeds[0]: expected an integer",))
spec_case("seeds-string", {**GOOD, "seeds": "1"}, says=("seeds: expected a list",))
spec_case("seeds-range-to-below-from", {**GOOD, "seeds": {"from": 5, "to": 2}}, says=("is below 'from'",))
spec_case("seeds-range-of-1e9", {**GOOD, "seeds": {"from": 0, "to": 10**9}}, says=("more than the",))
spec_case("seeds-range-float-bounds", {**GOOD, "seeds": {"from": 0.5, "to": 1e300}}, says=("seeds.from",))

# coefficients
spec_case("coeff-string-nan", {**GOOD, "coeff": "nan"}, says=("coeff: nan is not a finite number",))
spec_case("coeff-yaml-inf", "seeds: [1]\nvector: {kind: cheese}\ncoeff: .inf\n", says=("not a finite number",))
spec_case("coeff-true", {**GOOD, "coeff": True}, says=("coeff: expected a number",))
spec_case("coeff-400-digit-int", "seeds: [1]\nvector: {kind: cheese}\ncoeff: 1" + "0" * 400 + "\n", says=("too large",))
spec_case("coeff-1e308", {**GOOD, "coeff": 1e308}, says=("not finite",), untouched=False)
spec_case(
    "coeff-1e39-beyond-float32",
    {**GOOD, "coeff": 1e39},
    says=("coeff: 1e+39 is too large", "float32"),
)
spec_case(
    "sweep-coeff-range-of-1e9",
    {"seeds": [1], "vector": {"kind": "cheese"}, "coeffs": {"from": 0, "to": 1e9, "step": 1}},
    command="sweep-coeff",
    says=("coeffs: the range holds more than",),
)

# names, layers, unbounded values
spec_case("name-dotdot", {**GOOD, "name": "../x"}, says=("not a plain folder name",))
case(
    "name-absolute",
    lambda sb: ["apply", sb.spec({**GOOD, "name": str(sb.root / "abs")})],
    says=("not a plain folder name",),
)
spec_case(
    "name-with-nul", 'name: "a\\0b"\nseeds: [1]\nvector: {kind: cheese}\ncoeff: -1\n', says=("not a plain folder name",)
)
spec_case("layer-path-traversal", {**GOOD, "layer": "../../etc/passwd"}, says=("is not a hook point",))
spec_case(
    "layers-path-traversal", {**GOOD, "layers": ["../../x"]}, command="layer-sweep", says=("is not a hook point",)
)
spec_case(
    "layer-is-a-30k-item-list",
    f"seeds: [1]\nvector: {{kind: cheese}}\ncoeff: -1\nlayer: {BIG_LIST}\n",
    says=("layer: expected a non-empty string",),
)
spec_case(
    "vector-mouse-is-a-30k-item-list",
    f"seeds: [1]\nvector: {{kind: cheese, mouse: {BIG_LIST}}}\ncoeff: -1\n",
    says=("vector.mouse",),
)
spec_case("target-edits-is-a-300k-char-string", {**GOOD, "target_edits": "z" * 300_000}, says=("target_edits",))
spec_case("distribution-mode-300k-chars", {**GOOD, "distribution_mode": "q" * 300_000}, says=("distribution_mode",))

# edits and squares
spec_case(
    "target-edits-square-outside-world",
    {**GOOD, "target_edits": [{"cheese": [999, 999]}]},
    says=("outside the 15x15 world",),
    untouched=False,
)
spec_case(
    "custom-edit-square-out-of-range",
    {**GOOD, "vector": {"kind": "custom", "a": [{"cheese": [1001, 0]}]}},
    says=("vector.a[0].cheese[0]: 1001 is out of range",),
)
spec_case(
    "custom-edit-outside-world-source-seed",
    {**GOOD, "vector": {"kind": "custom", "a": [{"cheese": [40, 40]}], "source_seed": 1}},
    says=("vector.source_seed: seed 1", "outside the 15x15 world"),
)
spec_case(
    "transfer-show-pair-not-in-seeds",
    {**GOOD, "show": [[1, 5]]},
    command="transfer",
    says=("show[0][1]: seed 5 is not one of the targets",),
)

spec_case(
    "compose-second-vector-file-missing",
    {
        "seeds": [1],
        "vectors": [{"vector": {"kind": "cheese"}, "coeff": -1}, {"vector": {"file": "/nonexistent/v.pt"}, "coeff": 1}],
    },
    command="compose",
    says=("vectors[1]", "does not exist"),
)

# vector files
case(
    "vector-file-dotdot-to-etc-passwd",
    lambda sb: ["apply", sb.spec({**GOOD, "vector": {"file": "../" * 30 + "etc/passwd"}}), "--out", str(sb.out)],
    says=("vector.file: ", "is not a steer vector file"),
)
spec_case(
    "vector-file-absolute-missing", {**GOOD, "vector": {"file": "/nonexistent/steer/v.pt"}}, says=("does not exist",)
)
case(
    "vector-file-is-a-folder",
    lambda sb: ["apply", sb.spec({**GOOD, "vector": {"file": str(sb.inputs)}}), "--out", str(sb.out)],
    says=("is a folder",),
)


def _symlink_to_passwd(sb: Sandbox) -> list[str]:
    link = sb.inputs / "link.pt"
    link.symlink_to("/etc/passwd")
    return ["apply", sb.spec({**GOOD, "vector": {"file": str(link)}}), "--out", str(sb.out)]


case("vector-file-symlink-to-etc-passwd", _symlink_to_passwd, says=("is not a steer vector file",))
case(
    "vector-file-empty",
    lambda sb: ["apply", sb.spec({**GOOD, "vector": {"file": str(sb.file("v.pt", b""))}}), "--out", str(sb.out)],
    says=("is not a steer vector file",),
)
for _id, _fields, _says in [
    ("vector-file-float64", {"tensor": torch.zeros(32, 16, 16, dtype=torch.float64)}, "float64"),
    ("vector-file-wrong-shape", {"tensor": torch.zeros(7, 3)}, "cannot be added at"),
    ("vector-file-nan", {"tensor": torch.full((32, 16, 16), float("nan"))}, "NaN or infinite"),
    ("vector-file-wrong-format", {"format": "steer.vector/999"}, "is not a steer vector file"),
    (
        "vector-file-other-checkpoint",
        {"meta": {"source_seed": 0, "checkpoint_sha256": "0" * 64}},
        "was computed with checkpoint",
    ),
]:
    case(
        _id,
        lambda sb, f=_fields: ["apply", sb.spec({**GOOD, "vector": {"file": sb.vector(**f)}}), "--out", str(sb.out)],
        says=("vector.file: ", _says),
    )

_NAN_VECTOR = tensor_file_bytes(
    FORMAT, {"vector": torch.full((32, 16, 16), float("nan"))}, {"kind": "cheese", "layer": LAYER}, {}
)
for _id, _bytes, _says in [
    ("vector-safetensors-empty", b"", "too short for a safetensors header"),
    ("vector-safetensors-huge-header", b"\xff" * 8 + b"{}", "expected a JSON header of at most 1 MiB"),
    ("vector-safetensors-nan", _NAN_VECTOR, "NaN or infinite"),
]:
    case(
        _id,
        lambda sb, b=_bytes: [
            "apply",
            sb.spec({**GOOD, "vector": {"file": str(sb.file("v.safetensors", b))}}),
            "--out",
            str(sb.out),
        ],
        says=("vector.file: ", _says),
    )


def _never_ran(sb: Sandbox, outcome: Outcome) -> None:
    assert not (sb.root / "pwned").exists(), "the file's pickled code ran"


case(
    "vector-file-pickled-code",
    lambda sb: [
        "apply",
        sb.spec({**GOOD, "vector": {"file": sb.vector(meta={"x": Evil(sb.root / "pwned")})}}),
        "--out",
        str(sb.out),
    ],
    says=("run code from the file",),
    check=_never_ran,
)


# checkpoints
def ckpt_case(id: str, make: Callable[[Sandbox], str], **kw: Any) -> None:
    case(id, lambda sb: ["apply", sb.spec(GOOD), "--out", str(sb.out), "--checkpoint", make(sb)], **kw)


def _with(sb: Sandbox, key: str, value: torch.Tensor) -> dict[str, Any]:
    state = sb.shared.state()
    state[key] = value
    return {"state_dict": state}


ckpt_case("checkpoint-empty", lambda sb: str(sb.file("empty.pth", b"")), says=("could not be read",))
ckpt_case(
    "checkpoint-truncated",
    lambda sb: str(sb.file("half.pth", checkpoints.locate(None).read_bytes()[:100_000])),
    says=("could not be read",),
)
ckpt_case(
    "checkpoint-pickled-code",
    lambda sb: sb.checkpoint("evil.pth", {"state_dict": {}, "x": Evil(sb.root / "pwned")}),
    says=("unpickling it would run",),
    check=_never_ran,
)
ckpt_case("checkpoint-is-a-folder", lambda sb: str(sb.inputs), says=("is a folder",))
ckpt_case(
    "checkpoint-wrong-shapes",
    lambda sb: sb.checkpoint("shape.pth", _with(sb, "embedder.fc.weight", torch.zeros(256, 1024))),
    says=("has shape [256, 1024], expected [256, 2048]",),
)
ckpt_case(
    "checkpoint-15-channels",
    lambda sb: sb.checkpoint("c15.pth", _with(sb, "embedder.block1.conv.weight", torch.zeros(15, 3, 3, 3))),
    says=("expected 16·k",),
)
ckpt_case(
    "checkpoint-scale-10000-in-a-tiny-file",
    lambda sb: sb.checkpoint(
        "wide.pth", {"state_dict": {"embedder.block1.conv.weight": torch.zeros(160_000, 3, 1, 1)}}
    ),
    says=("checkpoint: ",),
)
ckpt_case("checkpoint-dev-zero", lambda sb: "/dev/zero", says=("checkpoint: ",), never_says=("does not exist",))
ckpt_case(
    "checkpoint-int64-weights",
    lambda sb: sb.checkpoint("int.pth", {"state_dict": {k: v.to(torch.int64) for k, v in sb.shared.state().items()}}),
    says=("error: checkpoint: ", "holds int64 values"),
)
ckpt_case(
    "checkpoint-memory-bomb-scale-200",
    lambda sb: sb.checkpoint("bomb.pth", {"state_dict": {"embedder.block1.conv.weight": torch.zeros(3200, 3, 1, 1)}}),
    says=("checkpoint: ",),
    proc=True,
)


# run folders: manifest.json and cells.jsonl
def run_case(id: str, tamper: Callable[[Sandbox], None], *, extra: tuple[str, ...] = (), **kw: Any) -> None:
    def build(sb: Sandbox) -> list[str]:
        spec = sb.copy_finished_run()
        tamper(sb)
        return ["apply", spec, "--out", str(sb.out), *extra]

    case(id, build, **kw)


def _victims_listed(sb: Sandbox) -> None:
    (sb.out / "link.png").symlink_to(sb.victim)

    def edit(m: dict[str, Any]) -> None:
        m["fingerprint"] = "a different run"
        m["cells"]["seed-1"]["files"] += ["../victim.txt", str(sb.victim), "link.png", "../../" + sb.root.name]
        m["reports"] = [*m.get("reports", []), "../victim.txt", "link.png", "..", 7, None]

    sb.edit_manifest(edit)


def _victim_kept(sb: Sandbox, outcome: Outcome) -> None:
    assert sb.victim.read_text() == "keep me" and (sb.out / "link.png").is_symlink()
    assert json.loads((sb.out / "manifest.json").read_text())["status"] == "complete"


def _write(name: str, content: bytes) -> Callable[[Sandbox], None]:
    def tamper(sb: Sandbox) -> None:
        path = sb.out / name
        path.unlink(missing_ok=True)
        path.write_bytes(content)

    return tamper


def _journal(*records: Any) -> Callable[[Sandbox], None]:
    return _write(
        "cells.jsonl", b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in records)
    )


def _resumed(sb: Sandbox, outcome: Outcome) -> None:
    if outcome.code != 0:
        return
    assert not (sb.out / "cells.jsonl").exists()
    assert json.loads((sb.out / "manifest.json").read_text())["status"] == "complete"
    assert json.loads((sb.out / "metrics.json").read_text())["mazes"][0]["seed"] == 1


run_case("manifest-lists-victims-with-force", _victims_listed, extra=("--force",), expect=(0,), check=_victim_kept)
run_case("manifest-not-json", _write("manifest.json", b"\xff\x00{not json"), says=("different run",))
run_case("manifest-is-a-list", _write("manifest.json", b"[1, 2, 3]"), says=("different run",))
run_case(
    "manifest-1MB-strings",
    _write(
        "manifest.json",
        json.dumps({"command": "x" * 10**6, "spec_name": "y" * 10**6, "started": ["z"] * 10**5}).encode(),
    ),
    says=("different run",),
)
run_case("manifest-nested-100k-deep", _write("manifest.json", b"[" * 100_000), says=("--out: ",))


def _manifest_is_a_folder(sb: Sandbox) -> None:
    (sb.out / "manifest.json").unlink()
    (sb.out / "manifest.json").mkdir()


run_case("manifest-is-a-folder", _manifest_is_a_folder, says=("--out: ",))
run_case("journal-torn-last-line", _journal(b'{"cell": "seed-1", "rec'), expect=(0,), check=_resumed)
run_case("journal-binary-junk", _journal(bytes(range(256)) * 10 + b"\n"), expect=(0,), check=_resumed)
run_case("journal-line-nested-100k-deep", _journal(b"[" * 100_000 + b"\n"), expect=(0,), check=_resumed)
run_case(
    "journal-record-without-result",
    _journal({"cell": "seed-1", "record": {"status": "done", "files": []}}),
    expect=(0, 2),
    check=_resumed,
)
run_case(
    "journal-record-result-not-a-mapping",
    _journal({"cell": "seed-1", "record": {"status": "done", "files": [], "result": 5}}),
    expect=(0, 2),
    check=_resumed,
)
run_case(
    "manifest-cell-result-missing-keys",
    lambda sb: sb.edit_manifest(lambda m: m["cells"]["seed-1"].update(result={})),
    expect=(0, 2),
    check=_resumed,
)


def _journal_is_a_folder(sb: Sandbox) -> None:
    (sb.out / "cells.jsonl").mkdir()


run_case("journal-is-a-folder", _journal_is_a_folder, expect=(0, 2))


# output folders
def out_case(id: str, prepare: Callable[[Sandbox], str], **kw: Any) -> None:
    case(id, lambda sb: ["apply", sb.spec(GOOD), "--out", prepare(sb)], **kw)


def _file(sb: Sandbox) -> str:
    sb.out.write_text("a file, not a folder")
    return str(sb.out)


def _link_to_foreign(sb: Sandbox) -> str:
    mine = sb.root / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    sb.out.symlink_to(mine)
    return str(sb.out)


def _dangling(sb: Sandbox) -> str:
    sb.out.symlink_to(sb.root / "nowhere")
    return str(sb.out)


def _read_only(sb: Sandbox) -> str:
    sb.out.mkdir()
    sb.out.chmod(0o555)
    return str(sb.out)


def _foreign(sb: Sandbox) -> str:
    sb.out.mkdir()
    (sb.out / "notes.txt").write_text("keep me")
    return str(sb.out)


out_case("out-is-a-file", _file, says=("--out: cannot write",))
out_case("out-symlink-to-a-folder-of-foreign-files", _link_to_foreign, says=("did not write",))
out_case("out-dangling-symlink", _dangling, says=("--out: cannot write",))
out_case(
    "out-read-only-folder",
    _read_only,
    says=("--out: cannot write",),
    marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders"),
)
out_case("out-under-proc", lambda sb: "/proc/steer-hostile-out", says=("--out: cannot write",))
out_case("out-with-foreign-files", _foreign, says=("did not write",))


def _existing_dotdot(sb: Sandbox) -> str:
    sb.out.mkdir()
    return str(sb.out / "..")


out_case("out-existing-folder-dotdot-to-the-sandbox", _existing_dotdot, says=("did not write",))
out_case("out-new-folder-dotdot-to-the-sandbox", lambda sb: str(sb.out / ".."), says=("did not write",))
out_case(
    "out-through-a-new-folder-and-dotdot",
    lambda sb: str(sb.root / "ghost" / ".." / "out"),
    expect=(0,),
    allowed=("out", "ghost"),
)
out_case("out-name-longer-than-NAME_MAX", lambda sb: str(sb.root / ("x" * 5000)), says=("--out: ",))
case("out-empty-string", lambda sb: ["apply", sb.spec(GOOD), "--out", ""], says=("did not write",))


# batch files
def batch_case(id: str, batch: Any, *, extra: tuple[str, ...] = (), out: bool = True, **kw: Any) -> None:
    def build(sb: Sandbox) -> list[str]:
        content = batch(sb) if callable(batch) else batch
        return ["batch", str(sb.file("batch.yaml", content)), *(("--out", str(sb.out)) if out else ()), *extra]

    case(id, build, **kw)


def _exp(name: str, command: str = "apply", spec: Any = None, **kw: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "spec": GOOD if spec is None else spec, **kw}


def _grid_of_a_million(sb: Sandbox) -> str:
    coeffs = ", ".join(str(i) for i in range(1000))
    sizes = ", ".join(str(i) for i in range(1, 1001))
    return (
        f"grid:\n  command: apply\n  spec: {{seeds: [1], vector: {{kind: cheese}}}}\n"
        f"  axes: {{coeff: [{coeffs}], batch_size: [{sizes}]}}\n"
    )


def _outside_spec(sb: Sandbox) -> dict[str, Any]:
    (sb.root / "elsewhere").mkdir()
    (sb.root / "elsewhere" / "spec.yaml").write_text(yaml.safe_dump({"seeds": [1], "vector": {"kind": "cheese"}}))
    return {"experiments": [_exp("vec", "compute-vector", "../elsewhere/spec.yaml")]}


batch_case(
    "batch-duplicate-names", {"experiments": [_exp("a"), _exp("a", spec={**GOOD, "coeff": 2})]}, says=("is used twice",)
)
batch_case("batch-unknown-command", {"experiments": [_exp("a", "frobnicate")]}, says=("is not one of",))
batch_case(
    "batch-spec-dotdot-to-etc-passwd",
    {"experiments": [_exp("a", spec="../" * 30 + "etc/passwd")]},
    says=("experiments[0].spec: ",),
)
batch_case("batch-spec-outside-its-folder", _outside_spec, expect=(0,))
batch_case("batch-experiment-name-dotdot", {"experiments": [_exp("../x")]}, says=("must be a folder name",))
batch_case("batch-is-a-list", [_exp("a")], says=("batch: ",))
batch_case("batch-set-through-a-scalar", {"experiments": [_exp("a", set={"coeff.x": 1})]}, says=("is not a mapping",))
batch_case(
    "batch-spec-is-a-500k-char-string",
    {"experiments": [_exp("a", spec="x" * 500_000)]},
    says=("experiments[0].spec: ",),
)
batch_case(
    "batch-name-dotdot-without-out",
    {
        "name": "../../escaped",
        "experiments": [_exp("vec", "compute-vector", {"seeds": [1], "vector": {"kind": "cheese"}})],
    },
    out=False,
    expect=(0, 2),
    allowed=("cwd/outputs",),
)
batch_case("batch-grid-of-a-million", _grid_of_a_million, proc=True, timeout=20, says=("grid",))

# the command line itself
case("unknown-command", lambda sb: ["frobnicate", sb.spec(GOOD)], usage=True, says=("No such command",))
# Usage errors are Typer's own (a usage line and a boxed message, not steer's `error: ` paragraph): accepted,
# as long as they exit 2, name the problem and the offending word, and carry no traceback.
case(
    "unknown-command-names-the-command",
    lambda sb: ["frobnicate", sb.spec(GOOD)],
    usage=True,
    says=("No such command", "frobnicate"),
)
case(
    "workers-zero",
    lambda sb: ["apply", sb.spec(GOOD), "--out", str(sb.out), "--workers", "0"],
    usage=True,
    says=("--workers",),
)

INPROC = [c for c in CASES if not c.values[0].proc]
PROC = [c for c in CASES if c.values[0].proc]


# -- running ------------------------------------------------------------------------------------------


def check(c: Case, sb: Sandbox, before: dict[str, Any], outcome: Outcome) -> None:
    out = outcome.output
    where = f"[{c.id}] exit {outcome.code} after {outcome.seconds:.1f}s, output ({len(out)} chars):\n{out[:1500]}"
    assert outcome.crash is None, f"{where}\n{outcome.crash}"
    assert "Traceback" not in out, where
    assert outcome.code in c.expect, where
    assert len(out) < MAX_OUTPUT, where
    for text in c.says:
        assert text in out, f"{where}\nmissing: {text!r}"
    for text in c.never_says:
        assert text not in out, f"{where}\nshould not contain: {text!r}"
    if outcome.code == 2 and not c.usage:
        assert any(line.startswith("error: ") for line in out.splitlines()), where
    changed = changes(before, sb.snapshot())
    assert not outside(changed, c.allowed), f"{where}\nwritten outside --out: {outside(changed, c.allowed)}"
    assert sb.victim.read_text() == "keep me"
    untouched = c.untouched if c.untouched is not None else outcome.code == 2
    if untouched:
        assert out.startswith("error: ") or c.usage, where
        assert not changed, f"{where}\na refused input left files behind: {changed}"
    if c.check is not None:
        c.check(sb, outcome)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    return Shared(tmp_path_factory.mktemp("shared"))


@pytest.mark.parametrize("c", INPROC)
def test_hostile_input(c: Case, tmp_path: Path, shared: Shared, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = Sandbox(tmp_path / "sandbox", shared)
    args = c.build(sb)
    before = sb.snapshot()
    monkeypatch.chdir(sb.cwd)
    start = time.perf_counter()
    result = runner.invoke(app, args)
    seconds = time.perf_counter() - start
    crash = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        lines = traceback.format_exception(result.exception)
        crash = "".join(line if len(line) < 300 else line[:300] + "…\n" for line in lines)[-3000:]
    check(c, sb, before, Outcome(result.exit_code, result.output, seconds, crash))
    assert seconds < INPROC_SECONDS, f"[{c.id}] took {seconds:.1f}s"


# -- real processes, started together in the background, under a watchdog ---------------------------


@pytest.fixture(scope="module", autouse=True)
def background(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared: Shared):
    """Start the selected process cases now (MAX_PARALLEL at a time), so their ~3 s start-ups overlap the rest."""
    selected = {
        item.callspec.id
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_hostile_process" and hasattr(item, "callspec")
    }
    started: dict[str, tuple[Sandbox, dict[str, Any], Watched]] = {}
    for param in PROC:
        c = param.values[0]
        if c.id not in selected:
            continue
        sb = Sandbox(tmp_path_factory.mktemp(c.id) / "sandbox", shared)
        args = c.build(sb)
        before = sb.snapshot()
        started[c.id] = (sb, before, Watched(args, sb.cwd, c.timeout, sb.root.parent / "output.txt"))
    with watchdog([w for _, _, w in started.values()], MAX_PARALLEL):
        yield started


@pytest.mark.parametrize("c", PROC)
def test_hostile_process(c: Case, background: dict[str, tuple[Sandbox, dict[str, Any], Watched]]) -> None:
    sb, before, w = background[c.id]
    assert w.done.wait(c.timeout + 180), f"[{c.id}] the watchdog never reaped the process"
    assert w.outcome is not None
    check(c, sb, before, w.outcome)
    assert w.outcome.peak_kib is not None and w.outcome.peak_kib < RSS_LIMIT_KIB, (
        f"[{c.id}] peak RSS {w.outcome.peak_kib // 1024} MiB"
    )
    assert w.outcome.seconds < c.timeout


def test_the_fuzz_pass_covers_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({p.id for p in CASES}) == len(CASES)
