"""A study's options (steer/run/options.py): each study declares the keys it reads once, and a spec missing a
required one gets that study's own message, once, from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import run, write_spec

from steer.run.options import Options, known_keys
from steer.run.specs import COMMON_KEYS
from steer.studies import STUDIES

REQUIRED = [(name, key) for name, study in STUDIES.items() for key in study.options.required()]


def test_every_study_declares_its_options_and_every_required_key_its_message() -> None:
    assert REQUIRED, "no study requires a key of its own: the test below would check nothing"
    for name, study in STUDIES.items():
        assert issubclass(study.options, Options), name
        assert study.allowed_keys[: len(COMMON_KEYS)] == COMMON_KEYS and "seeds" in study.allowed_keys
        for f in study.options.__dataclass_fields__.values():
            if f.name in study.options.required():
                message = f.metadata["missing"]
                assert message and message.startswith(f"{f.name}: missing; "), (name, f.name, message)


@pytest.mark.parametrize(("command", "key"), REQUIRED, ids=[f"{c}-{k}" for c, k in REQUIRED])
def test_a_missing_required_key_gets_the_study_s_own_message(tmp_path: Path, command: str, key: str) -> None:
    """Every other required key is given a value its parser accepts (a real one), so the message is this key's."""
    values = {
        "vector": {"kind": "cheese"},
        "coeff": -1,
        "coeffs": [-1, 1],
        "vectors": [{"vector": {"kind": "cheese"}, "coeff": -1}, {"vector": {"kind": "top_right"}, "coeff": 1}]
        if command == "compose"
        else [{"vector": {"kind": "cheese"}}, {"vector": {"kind": "top_right"}}],
        "channels": [10],
        "value": 5.5,
        "replication": {"from": 1000, "to": 1009},
    }
    study = STUDIES[command]
    data = {"seeds": [0], **{k: values[k] for k in study.options.required() if k != key}}
    message = study.options.__dataclass_fields__[key].metadata["missing"]
    out = tmp_path / "out"
    result = run(command, write_spec(tmp_path, data), "--out", out)
    assert result.exit_code == 2, result.output
    assert " ".join(message.split()) in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists()


def test_a_key_another_study_reads_is_refused_as_not_used_here_and_any_other_as_unknown(tmp_path: Path) -> None:
    assert "replication" in known_keys() and "replication" not in STUDIES["apply"].allowed_keys
    spec = {"seeds": [0], "vector": {"kind": "cheese"}, "coeff": -1}
    other = run("apply", write_spec(tmp_path, {**spec, "replication": [1000]}), "--out", tmp_path / "o")
    assert other.exit_code == 2 and "replication: `steer apply` does not use this key. Its keys are:" in other.output
    typo = run("apply", write_spec(tmp_path, {**spec, "cooeff": 1}), "--out", tmp_path / "o")
    assert typo.exit_code == 2 and "cooeff: unknown key. Did you mean `coeff`? Valid keys: name," in typo.output


def test_figures_parses_png_first_and_refuses_an_unknown_format(tmp_path: Path) -> None:
    from steer.run.specs import parse_spec

    spec = parse_spec({"seeds": [0], "figures": ["pdf", "svg", "pdf"]})
    assert spec.figures == ("png", "svg", "pdf")
    assert parse_spec({"seeds": [0]}).figures == ("png",)
    # The default leaves a run's identity as it was before the key existed (resumed runs, sealed locks).
    assert "figures" not in parse_spec({"seeds": [0]}).identity() and "figures" in spec.identity()
    base = {"seeds": [0], "vector": {"kind": "cheese"}, "coeff": -1}
    out = tmp_path / "out"
    for value, says in ((["gif"], "figures[0]: 'gif' is not a format"), ("svg", "figures: expected a list")):
        result = run("apply", write_spec(tmp_path, {**base, "figures": value}), "--out", out)
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output and not out.exists()


def test_a_vector_without_a_feature_keeps_the_identity_runs_had_before_features(tmp_path: Path) -> None:
    """Resuming a run folder written before `vector: {feature: …}` existed: its vector's identity has no feature key
    (a run of apply from then would otherwise be refused as another run's); one with a feature names it."""
    from steer.run.specs import parse_spec

    options = STUDIES["apply"].options
    plain = parse_spec({"seeds": [0], "vector": {"kind": "cheese"}, "coeff": -1}, options=options, command="apply")
    assert set(plain.identity()["vector"]) == {"pair", "source_seed", "file", "source_seeds"}
