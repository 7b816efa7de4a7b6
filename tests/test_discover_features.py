"""Dictionary features as `steer discover` families (`features:`) on the real checkpoint: a feature family's vector
is its decoder row placed at its positions times its typical code (the mean nonzero code over the screen mazes'
unpatched observations, measured independently here), its control a random feature at the same positions with the
same norm, a dead feature skipped and counted; a features-only search runs end to end with the nulls beside it and
states every feature in families.md; the sealed search's identity has no `features` key; every bad input exits 2
with nothing written. A small dictionary made here, 2-3 small mazes, one coefficient and `--workers 1`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _cli import run, write_spec
from _tables import check_tables

from steer.analysis.discover import control_vector, exact_numbers, facing_slice
from steer.analysis.metrics import FIELD_METRICS
from steer.maze.families import regions
from steer.net.dictionary_files import DictionaryMeta, dictionary_bytes
from steer.net.feature_vectors import feature_direction, placed
from steer.net.retarget import activation_position
from steer.net.sae import FitSettings, TopKSAE
from steer.net.vfield import facing_fields, facing_inputs
from steer.run.session import Session
from steer.run.specs import load_spec, parse_spec
from steer.studies.discover_features import plan_features
from steer.studies.discover_spec import DiscoverOptions

SITE = "block2.res1.resadd_out"
SMALL = {"decision_square": True, "smaller_than_world": True, "maze_dims": [5, 7]}
DEAD = 7  # the small dictionary's feature that never fires


def _sae() -> TopKSAE:
    """8 features in random unit directions, encoded by projection (top 2 per position); feature DEAD never fires."""
    sae = TopKSAE(32, 8, 2)
    w = torch.randn(8, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        sae.W_dec.copy_(w / w.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_enc[DEAD] = -1e6
    return sae


def _dictionary(path: Path, ckpt, **change: str) -> Path:
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (1,), 1, FitSettings(k=2, expansion=1, epochs=1, seed=0), "")
    path.write_bytes(dictionary_bytes(_sae(), meta.to_strings() | change))
    return path


def _spec(dictionary: Path, **features: object) -> dict:
    return {
        "seeds": {"from": 0, "count": 7, "where": SMALL},
        "replication": {"from": 8000, "count": 5, "where": SMALL},
        "screen": 2,
        "families": [],
        "coeffs": [2],
        "top_k": 1,
        "features": {"file": str(dictionary), "indices": [1, 5], **features},
    }


def test_a_feature_family_is_its_decoder_row_at_its_place_times_its_typical_code(tmp_path, ckpt, easy, policy) -> None:
    spec = parse_spec(_spec(_dictionary(tmp_path / "d.safetensors", ckpt), indices=[1, 5, DEAD], at="cheese"),
                      options=DiscoverOptions, command="discover")  # fmt: skip
    features = plan_features(spec, Session(ckpt, "easy", "spec", easy))
    assert features is not None and features.families == ("feature:1", "feature:5") and features.dead == (DEAD,)
    sae, screen = _sae(), spec.seeds[:2]
    site = policy.resolve(SITE)
    for k, index in enumerate(features.indices):
        # The typical code, measured here by another path: the site's maps of every state, encoded per position.
        codes = []
        for seed in screen:
            obs = facing_inputs(easy, easy.level(seed)).obs
            with torch.inference_mode():
                maps = policy.run({"input": obs}, stop=site, keep=frozenset([site]))[site]
                codes.append(sae.encode(maps.permute(0, 2, 3, 1).reshape(-1, 32))[:, index])
        z = torch.cat(codes)
        assert features.typical[k] == pytest.approx(float(z[z != 0].double().mean()), rel=1e-5)
        for seed in screen:
            level = easy.level(seed)
            here = activation_position(level, level.cheese, 16)
            v, positions = features.vector(f"feature:{index}", level)
            assert positions == (here,)
            assert torch.equal(v, placed(feature_direction(sae, index), [here], 16, features.typical[k]))
            control = control_vector(SITE, v, 11, positions)  # a random feature: same positions, same norm
            assert torch.isclose(control.norm(), v.norm()) and not torch.allclose(control, v)
            assert (control.abs().sum(0) > 0).nonzero().tolist() == [list(here)]


@pytest.fixture(scope="module")
def search(tmp_path_factory, ckpt) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("discover-features")
    spec = write_spec(folder, _spec(_dictionary(folder / "d.safetensors", ckpt)))
    out = folder / "out"
    result = run("discover", spec, "--out", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "metrics.json").read_text())


def test_a_features_only_search_screens_confirms_and_states_each_feature(search) -> None:
    out, report = search
    f = report["features"]
    assert f["site"] == SITE and f["screened"] == 2 and f["dead_skipped"] == 0 and f["dead_features"] == []
    assert f["found"] == len(f["found_features"]) == sum(r["status"] == "found" for r in report["table"]
                                                         if r["family"].startswith("feature:"))  # fmt: skip
    rows = {r["candidate"]: r for r in report["screen"]["candidates"]}
    for index in (1, 5):
        row = rows[f"feature:{index} @ {SITE} x 2"]
        assert row["mazes"] == 2  # beside its random control and the floor on both screen mazes
        assert any(v is not None for v in row["floor_beyond_control"].values())
        family = report["families"][f"feature:{index}"]
        assert family["factor"] == "feature" and family["statement"].startswith(f"at {SITE} (the dictionary's site)")
    # The nulls run beside a features-only search, at the dictionary's site, screened and confirmed.
    assert {r["family"] for r in report["screen"]["candidates"]} == {"feature:1", "feature:5", "null:same",
                                                                      "null:other_maze"}  # fmt: skip
    assert {"same", "other_maze"} <= set(report["nulls"]) and "cheese" in report["known"]
    table = (out / "families.md").read_text()
    assert "`feature:1`" in table and "`feature:5`" in table
    assert report["answer"]["said"].startswith("no family of maze edits searched; dictionary features: ")
    confirmed = [r for r in report["table"] if r["family"].startswith("feature:")]
    assert confirmed and all(r["replication"]["control"]["n"] == 5 for r in confirmed)
    check_tables(out)
    # The dictionary's bytes are part of both stages' identities: a changed file is another run, refused at the start.
    for folder in (out, out / "screen"):
        inputs = json.loads((folder / "manifest.json").read_text())["identity"]["inputs"]
        assert (
            list(inputs) == [str(out.parent / "d.safetensors")] and len(inputs[str(out.parent / "d.safetensors")]) == 64
        )


def test_the_screen_measured_each_feature_at_its_typical_code(search, policy, easy) -> None:
    """The screen's mean TV of a feature candidate is the one its reported typical code gives, recomputed here."""
    _, report = search
    seeds, typical = report["samples"]["screen"], report["features"]["typical_code"]
    sae = _sae()
    for index in (1, 5):
        tv, reach = [], []
        for seed in seeds:
            level = easy.level(seed)
            v = placed(feature_direction(sae, index), [(r, c) for r in range(16) for c in range(16)], 16,
                       typical[str(index)])  # fmt: skip
            original, patched = facing_fields(policy, facing_inputs(easy, level), [(), [(SITE, v, 2.0)]])
            tv.append(FIELD_METRICS["mean_tv"].compute(facing_slice(original), facing_slice(patched)))
            before, after = exact_numbers(original, regions(level)), exact_numbers(patched, regions(level))
            reach.append(after["p_reach_cheese"] - before["p_reach_cheese"])
        change = report["screen"]["candidates"]
        row = next(r for r in change if r["candidate"] == f"feature:{index} @ {SITE} x 2")
        assert row["mean_change"]["mean_tv"] == pytest.approx(sum(tv) / len(tv), abs=1e-5)
        assert row["mean_change"]["p_reach_cheese"] == pytest.approx(sum(reach) / len(reach), abs=1e-5)


def test_the_sealed_search_keeps_its_identity() -> None:
    """configs/discover-spec.yaml has no `features`: its identity has exactly the keys it had before they existed
    (its lock and resumed run folders stay valid); a spec with features names them."""
    spec = load_spec(Path(__file__).parents[1] / "configs" / "discover-spec.yaml", DiscoverOptions, "discover")
    keys = set(spec.identity())
    assert "features" not in keys
    assert keys == {"layer", "checkpoint", "distribution_mode", "target_edits", "batch_size",
                    "allow_other_checkpoint", "replication", "screen", "families", "layers", "coeffs", "top_k",
                    "margin", "precision", "crumble", "control_seed"}  # fmt: skip
    with_features = parse_spec({**spec.raw, "features": {"file": "d.safetensors"}}, options=DiscoverOptions,
                               command="discover")  # fmt: skip
    assert with_features.identity()["features"]["at"] == "everywhere"


@pytest.mark.parametrize(
    ("features", "meta", "message"),
    [
        ({"file": "missing.safetensors"}, {}, "features.file: '"),
        ({"indices": [1, 8]}, {}, "features.indices[1]: feature 8 is out of range; the dictionary '"),
        ({}, {"checkpoint": "elsewhere", "checkpoint_sha256": "0" * 64}, "was fitted with checkpoint 'elsewhere'"),
        ({}, {"site": "fc"}, "has activations of shape (256,), with no spatial map"),
        ({"positions": [[3, 3], [16, 2]]}, {}, "features.positions[1]: [16, 2] is outside the 16x16 map"),
        ({"indices": [DEAD]}, {}, "features.indices: none of the 1 features asked for is ever active"),
        ({"at": "corner"}, {}, "features.at: 'corner' is not a place"),
        (None, {}, "families: [] searches no family of maze edits, and no `features` are given"),
    ],
)
def test_bad_features_exit_2_with_nothing_written(tmp_path, ckpt, features, meta, message) -> None:
    spec = _spec(_dictionary(tmp_path / "d.safetensors", ckpt, **meta), **(features or {}))
    if features is None:
        del spec["features"]
    elif "missing" in str(features.get("file")):
        spec["features"]["file"] = str(tmp_path / "missing.safetensors")
    result = run("discover", write_spec(tmp_path, spec), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
