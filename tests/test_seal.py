"""Sealed criteria: `steer batch` records a batch's criteria before it measures the replication sample, refuses to
judge that sample again under changed criteria, and draws fresh seeds on --fresh-replication
(steer/analysis/seal.py, steer/batch/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _cli import run
from _harness import ROOT

from steer.analysis.seal import Lock, Replication, changes, decide, digest, next_untouched, seal_text, sealed_text
from steer.batch import load_batch
from steer.errors import SteerError


def _text(threshold: float = -0.3) -> dict:
    claims = [{"id": "a", "measure": {"experiment": "e"}, "criterion": {"below": threshold}, "post": "ignored"}]
    return sealed_text(
        claims, [{"name": "e", "command": "apply", "spec": {"seeds": [1], "replication": 5}}], (0, 99), [2]
    )


def test_the_sealed_text_holds_what_verdicts_depend_on_and_not_the_sample_or_the_prose() -> None:
    text = _text()
    assert text["claims"] == [{"id": "a", "measure": {"experiment": "e"}, "criterion": {"below": -0.3}}]
    assert text["experiments"][0]["spec"] == {"seeds": [1]}  # the replication seeds are the sample, not the procedure
    assert digest(text) != digest(_text(-0.2))
    assert changes(_text(), _text(-0.2)) == ["claim a changed"]


def test_what_changed_is_read_as_json_keeps_it() -> None:
    """A lock stores its texts as JSON, where YAML's integer keys come back as strings: not a change."""
    rule = {"from": 0, "per_maze_dim": {3: 3, 11: 2}}
    text = sealed_text([], [{"name": "t", "command": "transfer", "spec": {"seeds": rule}}], None, [])
    stored = json.loads(json.dumps(text))
    assert changes(stored, text) == []
    drawn = Replication(None, {"t": rule})
    assert drawn.same_draw(Replication.from_json(json.loads(json.dumps(drawn.to_json()))))


def test_a_first_run_is_recorded_the_same_criteria_pass_and_changed_ones_are_refused(tmp_path: Path) -> None:
    path, r = tmp_path / "b.lock", Replication((1000, 1999))
    first = decide(None, path, "b", _text(), r, r, fresh=False)
    assert first.write and first.entry["sealed"] and first.entry["sha256"] == digest(_text())
    first.lock.write()
    lock = Lock.read(path)
    again = decide(lock, path, "b", _text(), r, r, fresh=False)
    assert not again.write  # nothing to record: the lock already says so
    with pytest.raises(
        SteerError, match=r"opened on .* under other criteria .* \(claim a changed\).*--fresh-replication"
    ):
        decide(lock, path, "b", _text(-0.2), r, r, fresh=False)
    # A sample moved by hand past the opened one is new: recorded; one overlapping it is refused.
    moved = decide(lock, path, "b", _text(-0.2), Replication((2000, 2999)), Replication((2000, 2999)), False)
    assert moved.write and len(moved.lock.samples) == 2
    with pytest.raises(SteerError, match="under other criteria"):
        decide(lock, path, "b", _text(-0.2), Replication((1500, 2499)), Replication((1500, 2499)), False)


def test_a_fresh_sample_lies_past_every_sample_opened_by_the_same_rule(tmp_path: Path) -> None:
    rule = {"from": 1000, "count": 64, "where": {"decision_square": True}}
    opened = Replication((1000, 1999), {"search": rule}, {"search": (1000, 2150)})
    lock = decide(None, tmp_path / "b.lock", "b", _text(), opened, opened, fresh=False).lock
    fresh = next_untouched(lock, Replication((1000, 1999), {"search": rule}), (0, 999), 2**31 - 1)
    assert fresh.batch == (2151, 3150)  # the same length, past the highest seed opened
    assert fresh.rules["search"] == {**rule, "from": 2151}  # the same count and filters
    with pytest.raises(SteerError, match="runs past 2500"):
        next_untouched(lock, Replication((1000, 1999)), (0, 999), 2500)


def _batch(tmp_path: Path, threshold: float = -0.3) -> Path:
    spec = {"seeds": {"from": 0, "to": 4}, "vector": {"kind": "cheese"}, "coeff": -1}
    data = {
        "name": "sealed",
        "samples": {"discovery": {"from": 0, "to": 99}, "replication": {"from": 100, "to": 199}},
        "experiments": [{"name": "minus", "command": "apply", "spec": spec}],
        "claims": [
            {
                "id": "cheese",
                "post": "Subtracting the cheese vector makes the agent ignore cheese.",
                "setting": "5 mazes",
                "measure": {"experiment": "minus", "metric": "p_reach_cheese", "kind": "change"},
                "criterion": {"below": threshold},
            }
        ],
    }
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_editing_a_criterion_refuses_the_same_replication_and_fresh_replication_draws_new_seeds(tmp_path: Path) -> None:
    batch, out, lock = _batch(tmp_path), tmp_path / "out", tmp_path / "batch.lock"
    first = run("batch", batch, "--out", out)
    assert first.exit_code == 0, first.output
    recorded = json.loads(lock.read_text())
    (entry,) = recorded["samples"]
    assert entry["replication"]["batch"] == [100, 199] and entry["sealed"]
    assert "Criteria sealed before the replication sample was opened" in (out / "summary.md").read_text()
    before = lock.read_bytes()
    assert run("batch", batch, "--out", out).exit_code == 0 and lock.read_bytes() == before  # unchanged criteria

    _batch(tmp_path, threshold=-0.2)  # one criterion edited after the replication sample was seen
    manifest = (out / "replication" / "minus" / "manifest.json").read_bytes()
    refused = run("batch", batch, "--out", out)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "under other criteria than the batch file states now (claim cheese changed)" in refused.output
    assert "--fresh-replication" in refused.output
    assert lock.read_bytes() == before and (out / "replication" / "minus" / "manifest.json").read_bytes() == manifest

    fresh = run("batch", batch, "--out", out, "--fresh-replication")
    assert fresh.exit_code == 0, fresh.output
    samples = json.loads(lock.read_text())["samples"]
    assert [s["replication"]["batch"] for s in samples] == [[100, 199], [200, 299]]
    assert samples[1]["drawn_from"]["batch"] == [100, 199]
    seeds = {m["seed"] for m in json.loads((out / "replication" / "minus" / "metrics.json").read_text())["mazes"]}
    assert seeds == set(range(200, 205))
    said = json.loads((out / "batch.json").read_text())["seal"]["said"]
    assert (
        "drawn fresh" in said and "Earlier replication sample seeds 100-199" in said and "claim cheese changed" in said
    )
    # The plain command now measures the fresh sample: the lock, not the file, says which.
    assert load_batch(batch).samples["replication"] == [200, 299]


def test_seeds_alone_has_no_replication_to_seal_and_fresh_replication_with_it_is_refused(tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    assert load_batch(batch, (500, 599)).seal is None
    result = run("batch", batch, "--seeds", "500-599", "--fresh-replication", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "--fresh-replication: --seeds judges one sample alone" in result.output
    assert not (tmp_path / "batch.lock").exists()


@pytest.mark.parametrize("name", ["reproduce", "retarget", "behaviour-stats", "discover"])
def test_every_committed_batch_with_a_replication_sample_is_sealed_under_its_present_criteria(name: str) -> None:
    """A criterion edited in a committed batch file fails here before it reaches make reproduce: the lock beside it
    must say that the sample it measures was opened under these criteria."""
    b = load_batch(ROOT / "configs" / f"{name}.yaml")
    assert b.seal is not None and not b.seal.write, f"configs/{name}.lock does not seal the present criteria"
    said = seal_text(b.seal.lock, b.seal.entry)
    assert said["sealed"] and said["said"].startswith("Criteria sealed before the replication sample was opened")


def test_a_damaged_lock_is_refused_with_the_way_out(tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    (tmp_path / "batch.lock").write_text('{"batch": "sealed", "samples": [')
    result = run("batch", batch, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "batch.lock': not a lock steer can read" in result.output
    assert "Restore it from version control" in result.output and not (tmp_path / "out").exists()
