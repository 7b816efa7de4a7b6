"""A dictionary feature as a vector (`vector: {feature: {...}}`) on the real checkpoint: applied through `apply` it
gives the same field as the same tensor saved as a vector file, bit for bit; with the identity dictionary (feature i
is channel i) it is a one-hot channel vector at its position; `at: cheese` follows each maze's cheese; its random
control is a random feature at the same positions with the same norm; and every bad input exits 2 with nothing
written. One or two 3x3 mazes and `--workers 1` keep it to seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _tables import check_tables

from steer.analysis.chain import behaviour
from steer.analysis.controls import random_like
from steer.net.dictionary_files import DictionaryMeta, dictionary_bytes
from steer.net.feature_vectors import clamped, feature_direction, placed
from steer.net.retarget import activation_position
from steer.net.sae import FitSettings, TopKSAE
from steer.net.vectors import SteeringVector
from steer.net.vfield import facing_inputs, replaced_facing_fields

SITE = "block2.res1.resadd_out"
SETTINGS = FitSettings(k=8, expansion=2, epochs=1, seed=0)


def _dictionary(path: Path, ckpt, sae: TopKSAE, **change: str) -> Path:
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (1,), 1, SETTINGS, "")
    path.write_bytes(dictionary_bytes(sae, meta.to_strings() | change))
    return path


def _random_dictionary() -> TopKSAE:
    """Unit decoder rows in random directions: a feature that is no single channel."""
    sae = TopKSAE(32, 64, 8)
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        sae.W_dec.copy_(w / w.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
    return sae


def test_with_the_identity_dictionary_a_feature_at_one_position_is_a_one_hot_channel_vector() -> None:
    sae = TopKSAE.identity(32)
    vec = placed(feature_direction(sae, 10), [(8, 6)], 16, 2.5)
    expected = torch.zeros(32, 16, 16)
    expected[10, 8, 6] = 2.5
    assert torch.equal(vec, expected)
    assert torch.equal(placed(feature_direction(sae, 42), [(8, 6)], 16, 2.5), -expected)  # feature 32 + c is -e_c


def test_a_features_random_control_is_a_random_feature_at_its_positions_with_its_norm() -> None:
    positions = [[8, 6], [2, 3]]
    tensor = placed(feature_direction(_random_dictionary(), 5), [(8, 6), (2, 3)], 16, 4.0)
    vec = SteeringVector(SITE, tensor, "feature", {"positions": positions})
    a, b, other = random_like(vec, 7), random_like(vec, 7), random_like(vec, 8)
    assert torch.equal(a.tensor, b.tensor) and not torch.equal(a.tensor, other.tensor)  # seeded
    assert a.kind == "random_feature" and torch.isclose(a.tensor.norm(), tensor.norm())
    support = a.tensor.abs().sum(0) > 0
    assert support.nonzero().tolist() == sorted(positions)  # nowhere else
    assert torch.allclose(a.tensor[:, 8, 6], a.tensor[:, 2, 3])  # one channel direction, the same at each


def test_a_clamped_feature_sets_its_code_at_its_positions_and_leaves_everything_else_bit_for_bit() -> None:
    x = torch.randn(3, 32, 16, 16, generator=torch.Generator().manual_seed(0))
    out = clamped(TopKSAE.identity(32), 10, [(8, 6)], 0.0)(x)  # feature 10 of the identity: code relu(channel 10)
    expected = x.clone()
    expected[:, 10, 8, 6] = x[:, 10, 8, 6].clamp(max=0)
    assert torch.equal(out, expected)
    assert torch.equal(clamped(_random_dictionary(), 5, [], 3.0)(x), x)


def test_a_feature_clamped_in_the_real_chain_changes_behaviour_only_where_it_is_clamped(policy, easy) -> None:
    maze = easy.level(0)
    inputs = facing_inputs(easy, maze)
    here = activation_position(maze, maze.cheese, 16)
    sae = TopKSAE.identity(32)
    plain, none, strong = replaced_facing_fields(
        policy, inputs, SITE, [None, clamped(sae, 10, [], 9.0), clamped(sae, 10, [here], 9.0)]
    )
    assert np.array_equal(plain.probs, none.probs)  # nothing clamped: the policy exactly
    assert behaviour(plain).p_cheese == behaviour(none).p_cheese
    assert not np.array_equal(plain.probs, strong.probs)  # channel 10 set high at the cheese: a change


def test_a_feature_applied_gives_the_same_field_as_its_tensor_saved_as_a_vector_file(tmp_path, ckpt) -> None:
    sae = _random_dictionary()
    dictionary = _dictionary(tmp_path / "d.safetensors", ckpt, sae)
    feature = {"file": str(dictionary), "index": 5, "positions": [[8, 6], [9, 6]], "scale": 3}
    base = {"seeds": [0], "coeff": 2, "controls": ["random"]}
    by_feature = run("apply", write_spec(tmp_path, {**base, "vector": {"feature": feature}}, "f.yaml"), "--out",
                     tmp_path / "f", "--workers", "1")  # fmt: skip
    assert by_feature.exit_code == 0, by_feature.output
    tensor = placed(feature_direction(sae, 5), [(8, 6), (9, 6)], 16, 3.0)
    meta = {"checkpoint_sha256": ckpt.sha256, "checkpoint": ckpt.name, "distribution_mode": "easy"}
    SteeringVector(SITE, tensor, "custom", meta).save(tmp_path / "v.safetensors")
    raw = {**base, "vector": {"file": str(tmp_path / "v.safetensors")}}
    by_file = run("apply", write_spec(tmp_path, raw, "v.yaml"), "--out", tmp_path / "v", "--workers", "1")
    assert by_file.exit_code == 0, by_file.output
    assert (tmp_path / "f" / "vfield-seed0.json").read_bytes() == (tmp_path / "v" / "vfield-seed0.json").read_bytes()
    m = json.loads((tmp_path / "f" / "metrics.json").read_text())
    maze = m["mazes"][0]
    assert m["vector"]["kind"] == "feature" and m["vector"]["feature"]["index"] == 5
    assert maze["vector_norm"] == pytest.approx(float(tensor.norm()))
    assert maze["controls"]["random"]["norm"] == pytest.approx(float(tensor.norm()))
    assert -1 <= maze["cosine_cheese"] <= 1 and m["summary"]["cosine_cheese"]["n"] == 1
    assert "feature vs the maze's cheese vector: mean cosine" in by_feature.output
    assert f"feature 5 of {dictionary} x 3.0, at 2 map positions" in (tmp_path / "f" / "report.html").read_text()
    rows = check_tables(tmp_path / "f").table("mazes")
    assert rows.loc[rows.condition == "patched", "cosine_cheese"].tolist() == [maze["cosine_cheese"]]


def test_a_feature_at_the_cheese_sits_at_each_mazes_cheese(tmp_path, ckpt, easy) -> None:
    dictionary = _dictionary(tmp_path / "i.safetensors", ckpt, TopKSAE.identity(32))
    spec = {"seeds": [0, 1], "coeff": 1, "vector": {"feature": {"file": str(dictionary), "index": 10, "at": "cheese"}}}
    result = run("apply", write_spec(tmp_path, spec), "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["vector"]["feature"]["top_channels"][0] == [10, 1.0]  # feature 10 of the identity is channel 10
    for maze in m["mazes"]:
        level = easy.level(maze["seed"])
        assert maze["feature_positions"] == [list(activation_position(level, level.cheese, 16))]
        assert maze["vector_norm"] == 1.0  # the unit decoder row, scale 1


@pytest.mark.parametrize(
    ("feature", "extra", "message"),
    [
        ({"file": "other"}, {}, "vector.feature.file: '"),
        ({"file": "other"}, {}, "was fitted with checkpoint 'elsewhere' (sha256 000000000000…), not this run's"),
        ({}, {"layer": "block3.res1.resadd_out"}, "layer: 'block3.res1.resadd_out' is not the site the dictionary"),
        ({"index": 64}, {}, "vector.feature.index: 64 is out of range; the dictionary '"),
        ({"scale": float("nan")}, {}, "vector.feature.scale: nan is not a finite number"),
        ({"scale": float("inf")}, {}, "vector.feature.scale: inf is not a finite number"),
        ({"positions": [[8, 6], [16, 0]]}, {}, "vector.feature.positions[1]: [16, 0] is outside the 16x16 map"),
        ({"at": "cheese"}, {"target_edits": ["remove_cheese"]}, "vector.feature.at: this maze has no cheese"),
        ({"at": [20, 3]}, {}, "vector.feature.at: Square [20, 3] is outside the 15x15 world"),
        ({"at": "corner"}, {}, "vector.feature.at: 'corner' is not a place; use everywhere, cheese, top_right"),
        ({"at": "cheese", "positions": [[1, 1]]}, {}, "vector.feature: give exactly one of positions"),
    ],
)
def test_bad_feature_vectors_exit_2_with_nothing_written(tmp_path, ckpt, feature, extra, message) -> None:
    good = _dictionary(tmp_path / "i.safetensors", ckpt, TopKSAE.identity(32))
    if feature.get("file") == "other":
        other = _dictionary(tmp_path / "o.safetensors", ckpt, TopKSAE.identity(32), checkpoint="elsewhere",
                            checkpoint_sha256="0" * 64)  # fmt: skip
        feature = {**feature, "file": str(other)}
    place = {} if "positions" in feature or "at" in feature else {"positions": [[8, 6]]}
    spec = {"seeds": [0], "coeff": 1, "vector": {"feature": {"file": str(good), "index": 3, **place, **feature}},
            **extra}  # fmt: skip
    result = run("apply", write_spec(tmp_path, spec), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("command", "extra", "message"),
    [
        ("transfer", {"coeff": 1, "sources": [0], "targets": [1]}, "vector.feature: transfer moves each source maze's"),
        (
            "steerability",
            {"coeffs": [-1, 1], "target": "p_cheese_ds", "layers": [SITE]},
            "layers: a dictionary feature",
        ),
        (
            "choose",
            {"seeds": [0, 14], "replication": [1010, 1018], "coeffs": [1], "target": "p_cheese_ds"},
            "vector.feature.at: choose",
        ),
        ("apply", {"coeff": 1, "compare": ["own"]}, "compare: own builds"),
    ],
)
def test_commands_that_need_a_pair_or_one_site_refuse_a_feature(tmp_path, ckpt, command, extra, message) -> None:
    good = _dictionary(tmp_path / "i.safetensors", ckpt, TopKSAE.identity(32))
    spec = {"seeds": [0], **extra, "vector": {"feature": {"file": str(good), "index": 3, "at": "cheese"}}}
    result = run(command, write_spec(tmp_path, spec), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
