"""Untrusted inputs are harmless: checkpoints, vector files, manifests and spec names from anyone (how a YAML file
is read, within bounds, and how a name from a manifest is confined to its folder: tests/test_io.py).

Each test here failed before the fix it guards; together they pin what steer does with a hostile file:
refuse it with one short SteerError, and never run its code, expand it, or delete outside the output folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import pytest
import torch
import yaml
from _harness import LAYER, MISSING, Evil, save_vector_file

import steer
from steer.batch import load_batch
from steer.errors import SteerError, excerpt
from steer.net import checkpoints
from steer.net.vectors import PairSpec, SteeringVector, activations, compute_vector
from steer.run.runs import RunFolder, fingerprint, identity_hash, run_identity
from steer.run.specs import parse_spec

# -- excerpt: a value in a message is at most a short excerpt -------------------------------------


def test_excerpt_keeps_short_values_and_cuts_long_ones_with_their_size() -> None:
    assert excerpt("cheese") == "'cheese'" and excerpt(-1.5) == "-1.5" and excerpt([0, 1]) == "[0, 1]"
    long = excerpt("x" * 1_000_000)
    assert len(long) < 120 and long.endswith("… (1000000 characters)")
    many = excerpt(list(range(100_000)))
    assert len(many) < 120 and many.endswith("(a list of 100000 items)")
    assert len(excerpt(b"\0" * 10_000)) < 120
    assert excerpt(10**100_000) == "an integer of 332193 bits"  # repr() would refuse (and be slow)
    loop: list = []
    loop.append(loop)
    assert len(excerpt(loop)) < 120


def test_excerpt_of_a_huge_shared_structure_is_quick() -> None:
    """A 'billion laughs' value built in memory (shared lists): its full repr would never finish."""
    value: list = [0] * 9
    for _ in range(30):
        value = [value] * 9
    start = time.perf_counter()
    text = excerpt(value)
    assert time.perf_counter() - start < 0.1 and len(text) < 120


# -- checkpoints: weights only, and a wrong file is one clear message ------------------------------


def _state(ckpt) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in ckpt.policy.state_dict().items()}


def test_a_pickle_checkpoint_is_refused_and_its_code_never_runs(tmp_path: Path, ckpt) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": _state(ckpt), "extra": Evil(marker)}, evil)
    with pytest.raises(SteerError) as info:
        checkpoints.load(evil)
    message = str(info.value)
    assert message.startswith("checkpoint: ") and "'io.open'" in message and "run" in message
    assert "--allow-pickle-checkpoint only for a file you trust" in message and len(message) < 600
    assert not marker.exists()
    # Posing as a known checkpoint does not help: its sha256 is checked before anything is unpickled.
    fake = tmp_path / "checkpoints" / "maze-rr5-easy-2M.pth"
    fake.parent.mkdir()
    fake.write_bytes(evil.read_bytes())
    with pytest.raises(SteerError, match="sha256"):
        checkpoints.load(fake, allow_pickle=True)
    assert not marker.exists()


def test_allow_pickle_is_an_explicit_opt_in_for_a_trusted_legacy_checkpoint(tmp_path: Path, ckpt) -> None:
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": _state(ckpt), "args": argparse.Namespace(lr=5e-4)}, legacy)
    with pytest.raises(SteerError, match=r"argparse\.Namespace"):
        checkpoints.load(legacy)
    loaded = checkpoints.load(legacy, allow_pickle=True)
    assert loaded.sha256 == checkpoints.sha256_of(legacy) and loaded.scale == 1


@pytest.mark.parametrize("name", [k for k, v in checkpoints.KNOWN.items() if v.sha256])
def test_the_real_checkpoints_load_weights_only(name: str) -> None:
    path = checkpoints.locate(name)
    torch.load(path, map_location="cpu", weights_only=True)
    loaded = checkpoints.load(name)
    assert loaded.name == name and loaded.sha256 == checkpoints.KNOWN[name].sha256


def test_a_checkpoint_path_that_is_a_folder_is_called_a_folder(tmp_path: Path) -> None:
    for folder in (tmp_path, tmp_path / "model.pth", tmp_path / "models"):
        folder.mkdir(exist_ok=True)
        with pytest.raises(SteerError, match=r"is a folder, not a checkpoint file"):
            checkpoints.load(folder)


def test_a_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path: Path, ckpt) -> None:
    state = _state(ckpt)
    state["embedder.fc.weight"] = torch.zeros(256, 1024)
    del state["fc_value.bias"]
    state["x" * 10_000] = torch.zeros(1)
    path = tmp_path / "wrong.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(SteerError) as info:
        checkpoints.load(path)
    message = str(info.value)
    assert "tensor 'embedder.fc.weight' has shape [256, 1024], expected [256, 2048]" in message
    assert "tensor 'fc_value.bias' is missing" in message and "is not a tensor of this policy" in message
    assert len(message) < 800 and "\n" not in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path: Path, ckpt, bad: float) -> None:
    state = _state(ckpt)
    state["fc_policy.bias"][3] = bad
    path = tmp_path / "diverged.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(SteerError, match=r"'fc_policy\.bias' holds 1 NaN or infinite values"):
        checkpoints.load(path)


# -- a spec's name is a folder name, never a path --------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../../escaped", "/tmp/abs", "a/b", "..", ".", "sp ace", "a\tb", "x" * 5000 + "/y", "naïve", "a\\b"]
)
def test_a_spec_name_that_is_not_a_plain_folder_name_is_refused(name: str) -> None:
    with pytest.raises(SteerError) as info:
        parse_spec({"name": name, "seeds": [0]})
    message = str(info.value)
    assert message.startswith("name: ") and "is not a plain folder name" in message and len(message) < 300
    assert "e.g. name: cheese-vector" in message


def test_plain_spec_names_and_file_stems_are_kept() -> None:
    for name in ("cheese-vector", "run_2.v1", "A", "..x"):
        assert parse_spec({"name": name, "seeds": [0]}).name == name
    assert parse_spec({"seeds": [0]}, Path("configs/my-spec.yaml")).name == "my-spec"
    assert parse_spec({"seeds": [0]}, Path("/somewhere/...yaml")).name == "experiment"  # stem '..'


# -- vector files: every field checked, one message naming vector.file ----------------------------


def _vector_file(tmp_path: Path, **fields: object) -> Path:
    return save_vector_file(tmp_path / "vector.pt", **fields)


_NAN = torch.zeros(32, 16, 16).index_put_((torch.tensor([3]),), torch.tensor(float("nan")))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"layer": 5}, "field 'layer': expected a hook name"),
        ({"layer": None}, "field 'layer': expected a hook name"),
        ({"layer": "x" * 100_000}, "field 'layer': expected a hook name"),
        ({"kind": MISSING}, "field 'kind': expected one of cheese, top_right, custom, got nothing"),
        ({"kind": "gouda"}, "field 'kind': expected one of cheese, top_right, custom, got 'gouda'"),
        ({"tensor": torch.zeros(32, 16, 16, dtype=torch.float64)}, "got a float64 tensor of shape [32, 16, 16]"),
        ({"tensor": torch.zeros(32, 16, 16, dtype=torch.int64)}, "got a int64 tensor of shape [32, 16, 16]"),
        ({"tensor": _NAN}, "field 'tensor': expected finite values, got a float32 tensor of shape [32, 16, 16] with"),
        ({"tensor": torch.full((32, 16, 16), float("inf"))}, "with 8192 NaN or infinite values"),
        ({"tensor": torch.tensor(1.0)}, "field 'tensor': expected one observation's activations"),
        ({"tensor": [0.0] * 10_000}, "field 'tensor': expected a dense tensor, got [0.0, 0.0"),
        ({"tensor": MISSING}, "field 'tensor': expected a dense tensor, got nothing"),
        ({"meta": [1, 2]}, "field 'meta': expected a mapping"),
        ({"meta": {"source_seed": "s" * 10_000}}, "field 'meta.source_seed': expected a level seed"),
        ({"format": "other/1"}, "is not a steer vector file (format 'steer.vector/1')"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, dict) else None,
)
def test_a_vector_file_field_of_the_wrong_type_is_one_clear_error(tmp_path: Path, fields: dict, expected: str) -> None:
    path = _vector_file(tmp_path, **fields)
    with pytest.raises(SteerError) as info:
        SteeringVector.load(path)
    message = str(info.value)
    assert message.startswith("vector.file: ") and expected in message, message
    assert len(message) < 500 and "\n" not in message


def test_files_that_are_not_vector_files_are_refused(tmp_path: Path, ckpt) -> None:
    assert SteeringVector.load(_vector_file(tmp_path)).layer == LAYER  # the baseline file is fine
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02not a torch file")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    checkpoint = checkpoints.locate(checkpoints.DEFAULT_CHECKPOINT)
    for path in (junk, tmp_path / "tensor.pt", checkpoint):
        with pytest.raises(SteerError, match=r"^vector\.file: .* is not a steer vector file"):
            SteeringVector.load(path)
    with pytest.raises(SteerError, match=r"^vector\.file: .* is a folder, not a vector file"):
        SteeringVector.load(tmp_path)


def test_a_vector_file_that_needs_pickle_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _vector_file(tmp_path, meta={"source_seed": 0, "note": Evil(marker)})
    with pytest.raises(SteerError) as info:
        SteeringVector.load(path)
    assert str(info.value).startswith("vector.file: ") and "'io.open'" in str(info.value)
    assert "run code from the file" in str(info.value) and not marker.exists()


# -- custom pairs: a {mouse: …} edit moves the mouse; a pair that changes nothing is an error -------


def _open_square(maze, exclude: set) -> tuple[int, int]:
    return next(sq for sq in maze.open_squares() if sq not in exclude and sq != maze.cheese)


def test_a_mouse_edit_in_a_custom_pair_moves_the_mouse(policy, easy) -> None:
    level = easy.level(3)
    start = level.start_square
    square = _open_square(level, {start})
    pair = PairSpec("custom", a=(("mouse", square),), b=())
    vec = compute_vector(policy, easy, level, pair, LAYER)
    moved, home = level.with_mouse(square), level.with_mouse(start)
    expected = activations(policy, easy, [moved, home], LAYER)
    assert vec.tensor.abs().sum() > 0
    assert torch.equal(vec.tensor, expected[0] - expected[1])
    assert vec.meta["mouse"] == list(start) and vec.meta["mouse_a"] == list(square) and "mouse_b" not in vec.meta
    # The pair's own square is where both observations start; the edit still moves a's mouse from there.
    other = _open_square(level, {start, square})
    shifted = compute_vector(policy, easy, level, PairSpec("custom", a=(("mouse", square),), mouse=other), LAYER)
    expected = activations(policy, easy, [moved, level.with_mouse(other)], LAYER)
    assert torch.equal(shifted.tensor, expected[0] - expected[1])


@pytest.mark.parametrize("case", ["same-mouse", "same-edit", "no-edits"])
def test_a_pair_whose_observations_are_identical_is_refused(policy, easy, case: str) -> None:
    level = easy.level(0)
    square = _open_square(level, {level.start_square})
    pair = {
        "same-mouse": PairSpec("custom", a=(("mouse", square),), b=(("mouse", square),)),
        "same-edit": PairSpec("custom", a=(("remove_cheese", None),) * 2, b=(("remove_cheese", None),)),
        "no-edits": PairSpec("custom"),
    }[case]
    with pytest.raises(SteerError) as info:
        compute_vector(policy, easy, level, pair, LAYER, where="vectors[1].vector")
    message = str(info.value)
    assert message.startswith("vectors[1].vector: the two observations of this custom pair are identical")
    assert "the vector would be zero" in message


# -- run folders: the manifest is untrusted; --force deletes only inside the folder ----------------

PROV = {"checkpoint": {"sha256": "ab" * 32}, "distribution_mode": "easy"}


def _open_run(out: Path, spec: dict, cells: list[str], **kwargs: object) -> RunFolder:
    return RunFolder.open(out, "apply", spec, cells, PROV, **kwargs)


def test_a_run_keeps_its_records_as_compact_text_and_writes_the_manifest_as_before(tmp_path: Path) -> None:
    """The records a run holds are the compact JSON its manifest gets, read back only when used; the manifest
    written piece by piece parses to the records as written (NaN as null), each reused on resume."""
    from steer.run.runner import CellResults, _plain

    out = tmp_path / "out"
    cells = [f"seed-{s}" for s in range(3)]
    run = _open_run(out, {"name": "a"}, cells)
    results = [{"seed": s, "p": s / 3, "nan": float("nan"), "rows": [[s, 1.5]]} for s in range(3)]
    for seed in (2, 0, 1):  # cells finish in any order
        run.record(f"seed-{seed}", "done", [], results[seed])
    assert all(isinstance(text, bytes) for text in run.cells.values())
    lazy = CellResults(run, cells)
    expected = [{**r, "nan": None} for r in results]
    assert len(lazy) == 3 and list(lazy) == expected and lazy[1] == expected[1] and lazy[1:] == expected[1:]
    assert _plain({"mazes": lazy}) == {"mazes": expected}  # as a report that lists its mazes gets them
    run.close("complete", reports=["metrics.json"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["reports"] == ["metrics.json"]
    assert {c: r["result"] for c, r in manifest["cells"].items()} == dict(zip(cells, expected, strict=True))
    again = _open_run(out, {"name": "a"}, cells)
    assert [again.finished(c)["result"] for c in cells] == expected


def test_force_never_deletes_outside_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _open_run(out, {"name": "a"}, ["seed-0"])
    (out / "field-seed0.png").write_bytes(b"png")
    run.record("seed-0", "done", ["field-seed0.png"], {})
    run.close("complete", reports=["metrics.json"])
    victims = [tmp_path / "victim.txt", tmp_path / "absolute.txt", tmp_path / "linked.txt"]
    for victim in victims:
        victim.write_text("keep me")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "deep.txt").write_text("keep me")
    victims.append(tmp_path / "dir" / "deep.txt")
    (out / "link.png").symlink_to(tmp_path / "linked.txt")
    (out / "dirlink").symlink_to(tmp_path / "dir")
    # An edited manifest: the cell and the reports name files outside the folder every way there is.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["cells"]["seed-0"]["files"] += ["../victim.txt", str(tmp_path / "absolute.txt"), "link.png"]
    manifest["reports"] += ["dirlink/deep.txt", "../out/../victim.txt", 7, None]
    manifest["cells"]["odd"] = ["not", "a", "record"]
    (out / "manifest.json").write_text(json.dumps(manifest))

    _open_run(out, {"name": "b"}, ["seed-0"], force=True)  # a different run, replaced with --force
    assert all(v.read_text() == "keep me" for v in victims)
    assert not (out / "field-seed0.png").exists()  # what is inside is still removed


def test_a_cell_whose_files_leave_the_folder_is_not_finished(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (tmp_path / "victim.png").write_bytes(b"png")
    run = _open_run(out, {"name": "a"}, ["seed-0", "seed-1", "seed-2", "seed-3"])
    (out / "link.png").symlink_to(tmp_path / "victim.png")
    run.record("seed-0", "done", ["../victim.png"], {})
    run.record("seed-1", "done", [str(tmp_path / "victim.png")], {})
    run.record("seed-2", "done", ["link.png"], {})
    run.cells["seed-3"] = json.dumps({"status": "done", "files": "field.png"}).encode()  # not a list
    assert [run.finished(c) for c in ("seed-0", "seed-1", "seed-2", "seed-3")] == [None] * 4


def test_a_cell_whose_png_was_deleted_is_computed_again(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _open_run(out, {"name": "a"}, ["seed-0", "seed-1"])
    for seed in (0, 1):
        (out / f"field-seed{seed}.png").write_bytes(b"png")
        run.record(f"seed-{seed}", "done", [f"field-seed{seed}.png"], {"seed": seed})
    run.close("complete")
    (out / "field-seed1.png").unlink()
    again = _open_run(out, {"name": "a"}, ["seed-0", "seed-1"])
    assert again.finished("seed-0") == again.record_of("seed-0") and again.finished("seed-0")
    assert again.finished("seed-1") is None


def test_a_record_steer_did_not_write_as_it_is_is_computed_again(tmp_path: Path) -> None:
    """A reused result must hold what the report reads: an edited, truncated or hand-made record is recomputed."""
    out = tmp_path / "out"
    cells = [f"seed-{s}" for s in range(8)]
    run = _open_run(out, {"name": "a"}, cells)
    for seed in range(8):
        run.record(f"seed-{seed}", "done", [], {"seed": seed, "p_cheese_ds": 0.5, "nan": float("nan")})
    run.close("complete")
    manifest = json.loads((out / "manifest.json").read_text())
    cell = manifest["cells"]
    del cell["seed-1"]["result"]
    cell["seed-2"]["result"] = 5
    cell["seed-3"]["result"] = {}
    cell["seed-4"]["result"] = {"seed": 4}  # the seed is right, the report's keys are gone
    cell["seed-5"]["result"]["seed"] = 6  # another cell's result
    cell["seed-6"]["files"] = [7]
    del cell["seed-7"]["check"]  # a record written before records were checked, or by hand
    (out / "manifest.json").write_text(json.dumps(manifest))
    again = _open_run(out, {"name": "a"}, cells)
    assert [c for c in cells if again.finished(c)] == ["seed-0"]
    assert sorted(again.cells) == ["seed-0"]  # the others are not carried into the new manifest


def test_a_journal_that_is_a_folder_is_refused_even_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _open_run(out, {"name": "a"}, ["seed-0"]).close("complete")
    (out / "cells.jsonl").mkdir()
    (out / "cells.jsonl" / "mine.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(SteerError, match=r"holds a folder cells\.jsonl, which steer did not write"):
            _open_run(out, {"name": "a"}, ["seed-0"], force=force)
    assert (out / "cells.jsonl" / "mine.txt").read_text() == "keep me"


def test_out_through_dotdot_is_checked_where_it_lands(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(SteerError, match="already holds files that steer did not write"):
        _open_run(tmp_path / "new" / "..", {"name": "a"}, ["seed-0"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    run = _open_run(tmp_path / "ghost" / ".." / "out", {"name": "a"}, ["seed-0"])
    assert run.path == (tmp_path / "out").resolve() and not (tmp_path / "ghost").exists()
    with pytest.raises(SteerError, match=r"--out: .* cannot be used as the output folder"):
        _open_run(tmp_path / ("x" * 5000), {"name": "a"}, ["seed-0"])


@pytest.mark.parametrize("name", ["../../escaped", "..", ".", "a/b", "/abs", "", "a\nb", 7])
def test_a_batch_name_must_be_a_plain_folder_name(tmp_path: Path, name: object) -> None:
    exp = {"name": "a", "command": "compute-vector", "spec": {"seeds": [1], "vector": {"kind": "cheese"}}}
    batch = tmp_path / "batch.yaml"
    batch.write_text(yaml.safe_dump({"name": name, "experiments": [exp]}))
    with pytest.raises(SteerError, match=r"^name: .* is not a plain folder name"):
        load_batch(batch)
    dots = tmp_path / "...yaml"  # its stem is '..': the batch is named 'batch' instead
    dots.write_text(yaml.safe_dump({"experiments": [exp]}))
    assert load_batch(dots).name == "batch"


# -- run identity: input files count, seeds can grow -----------------------------------------------


def test_the_fingerprint_covers_input_files_and_stays_compatible() -> None:
    spec = {"coeff": -1.0, "vector": {"file": "v.pt"}}
    base = fingerprint("apply", spec, "c" * 64, "easy", {"vector.file": "1" * 64})
    assert base == fingerprint("apply", spec, "c" * 64, "easy", {"vector.file": "1" * 64})
    assert base != fingerprint("apply", spec, "c" * 64, "easy", {"vector.file": "2" * 64})
    assert base != fingerprint("apply", spec, "c" * 64, "easy")
    two = {"a": "1" * 64, "b": "2" * 64}
    assert fingerprint("apply", spec, "c", "easy", two) == fingerprint(
        "apply", spec, "c", "easy", dict(reversed(two.items()))
    )
    # Without inputs it is the fingerprint steer wrote before, so existing run folders still resume.
    legacy = json.dumps(
        {"command": "apply", "spec": spec, "checkpoint": "c", "mode": "easy", "steer": steer.__version__},
        sort_keys=True,
        default=str,
    )
    assert fingerprint("apply", spec, "c", "easy") == hashlib.sha256(legacy.encode()).hexdigest()[:16]
    assert identity_hash(run_identity("apply", spec, "c", "easy")) == fingerprint("apply", spec, "c", "easy")


def test_more_seeds_resume_a_run_whose_identity_leaves_out_the_seeds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = {"coeff": -1.0, "vector": {"kind": "cheese"}}
    identity = run_identity("apply", spec, PROV["checkpoint"]["sha256"], "easy", {"vector.file": "1" * 64})
    run = _open_run(out, {**spec, "seeds": [0, 1]}, ["seed-0", "seed-1"], identity=identity)
    for seed in (0, 1):
        (out / f"field-seed{seed}.png").write_bytes(b"png")
        run.record(f"seed-{seed}", "done", [f"field-seed{seed}.png"], {"seed": seed})
    run.close("complete", reports=["metrics.json"])

    grown = _open_run(out, {**spec, "seeds": [0, 1, 2]}, ["seed-0", "seed-1", "seed-2"], identity=dict(identity))
    assert grown.finished("seed-0") and grown.finished("seed-1") and grown.finished("seed-2") is None
    assert grown.manifest["cells_planned"] == ["seed-0", "seed-1", "seed-2"]
    assert grown.manifest["identity"] == identity and grown.manifest["spec"]["seeds"] == [0, 1, 2]
    # The old form (the spec with its seeds is the identity) still treats more seeds as a different run ...
    with pytest.raises(SteerError, match="holds the results of a different run"):
        _open_run(out, {**spec, "seeds": [0, 1, 2, 3]}, ["seed-0", "seed-1", "seed-2", "seed-3"])
    # ... and so does a changed input file.
    changed = run_identity("apply", spec, PROV["checkpoint"]["sha256"], "easy", {"vector.file": "2" * 64})
    with pytest.raises(SteerError, match="holds the results of a different run"):
        _open_run(out, {**spec, "seeds": [0, 1]}, ["seed-0", "seed-1"], identity=changed)


def test_a_different_run_message_quotes_the_old_manifest_briefly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _open_run(out, {"name": "a"}, ["seed-0"]).close("complete")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["spec_name"] = "x" * 100_000
    manifest["command"] = ["apply"] * 10_000
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SteerError, match="holds the results of a different run") as info:
        _open_run(out, {"name": "b"}, ["seed-0"])
    assert len(str(info.value)) < 500
