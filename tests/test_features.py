"""`steer features` on the real checkpoint: the fit is deterministic, faithfulness comes from the real chain (a
dictionary that returns its input changes nothing, a real one changes the action distributions), dictionary files
keep their metadata and are refused elsewhere, the study runs and resumes its fit, and every bad input exits 2
with nothing written. Small mazes (dimension 3 to 7) and one-epoch fits keep it to seconds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _tables import check_tables
from safetensors import safe_open

from steer.analysis.chain import maze_behaviours
from steer.analysis.features import corpus_rows, maze_faithfulness
from steer.errors import SteerError
from steer.net.dictionary_files import DictionaryMeta, check_dictionary, dictionary_bytes, read_dictionary
from steer.net.sae import FitSettings, TopKSAE, fit
from steer.net.vfield import NonFiniteError, facing_inputs, replaced_facing_fields

SITE = "block2.res1.resadd_out"
TINY = {"seeds": [1000], "corpus": [20, 22], "fraction": 0.02, "epochs": 1, "k": 4, "ks": [8]}


@pytest.fixture(scope="module")
def rows(policy, easy) -> torch.Tensor:
    x, total = corpus_rows(policy, easy, easy.level(20), SITE, 0.1, seed=0, batch_size=64)
    assert x.shape == (round(0.1 * total), 32)  # 5x5 maze: states x 256 positions, cheese kept and removed
    return torch.from_numpy(x[:1024])


def test_a_fit_is_deterministic_and_keeps_at_most_k_features(rows) -> None:
    settings = FitSettings(k=4, expansion=4, epochs=2, seed=3, batch=256)
    torch.set_num_threads(1)
    try:
        a, log = fit(rows, settings)
        b, _ = fit(rows, settings)
        c, _ = fit(rows, FitSettings(k=4, expansion=4, epochs=2, seed=4, batch=256))
    finally:
        torch.set_num_threads(2)
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0, equal_nan=True)  # bit-identical
    assert not torch.equal(a.W_dec, c.W_dec)  # the seed matters
    assert log.steps == 8 and log.rows == 1024
    z = a.encode(rows)
    assert int((z > 0).sum(1).max()) <= 4
    assert torch.allclose(a.W_dec.norm(dim=1), torch.ones(a.d_sae), atol=1e-5)


def test_a_batch_topk_fit_keeps_k_features_per_position_on_average(rows) -> None:
    sae, _ = fit(rows, FitSettings(k=4, expansion=4, epochs=1, seed=0, batch=256, batch_topk=True))
    z = sae.encode(rows)  # every row was in the calibration (fewer than its 65,536 rows)
    assert float(sae.threshold) > 0 and float((z > 0).sum(1).float().mean()) == pytest.approx(4, abs=1e-3)
    assert int((z > 0).sum(1).max()) > 4  # a position may use more than k


def test_the_identity_dictionary_changes_nothing_and_a_fitted_one_is_measured_on_the_real_chain(
    policy, easy, rows
) -> None:
    maze = easy.level(1000)
    junk, _ = fit(rows, FitSettings(k=1, expansion=2, epochs=1, seed=0))  # a poor dictionary: 1 feature of 64
    own, positions, (same, poor) = maze_faithfulness(policy, easy, maze, SITE, [TopKSAE.identity(32), junk], 64)
    assert own == pytest.approx(maze_behaviours(policy, easy, maze)[0].p_cheese, abs=1e-6)  # the chain's own answer
    assert same.delta_p_cheese == 0.0 and same.mean_tv == 0.0 and same.p_cheese == own
    assert same.quality.sse == 0.0 and same.quality.variance_explained == 1.0
    assert positions == same.quality.rows and positions % 256 == 0
    assert poor.mean_tv > 1e-3 and poor.quality.variance_explained < 0.9
    assert poor.quality.l0 / poor.quality.rows <= 1.0


def test_a_dictionary_file_keeps_its_metadata_and_is_refused_for_another_checkpoint_or_site(
    tmp_path, ckpt, rows
) -> None:
    settings = FitSettings(k=4, expansion=2, epochs=1, seed=0)
    sae, _ = fit(rows, settings)
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (20,), len(rows), settings, inputs="abc")
    path = tmp_path / "d.safetensors"
    data = {dictionary_bytes(sae, meta.to_strings()) for _ in range(5)}
    assert len(data) == 1  # the same bytes every time (safetensors alone orders its header differently each call)
    path.write_bytes(data.pop())
    back = read_dictionary(path)
    assert all(torch.equal(getattr(sae, n), getattr(back.sae, n)) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    assert back.k == 4 and back.meta["corpus_seeds"] == "[20]" and back.meta["library"].startswith("steer.net.sae")
    check_dictionary(back, path, SITE, ckpt.sha256, 32)
    with pytest.raises(SteerError, match=r"fitted with checkpoint .* not this run's"):
        check_dictionary(back, path, SITE, "0" * 64, 32)
    with pytest.raises(
        SteerError, match=r"was fitted at 'block2\.res1\.resadd_out', not at 'block3\.res1\.resadd_out'"
    ):
        check_dictionary(back, path, "block3.res1.resadd_out", ckpt.sha256, 32)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("features")
    result = run("features", write_spec(folder, {"name": "tiny", **TINY}), "--out", folder / "run", "--workers", 1)
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_the_study_writes_its_dictionaries_metrics_and_table(tiny_run, ckpt) -> None:
    report = json.loads((tiny_run / "metrics.json").read_text())
    corpus = report["corpus"]
    assert corpus["seeds"] == [20, 22] and abs(corpus["rows"] - 0.02 * corpus["positions"]) <= 1
    assert set(report["quality"]) == {"4", "8"} and report["dictionary"]["k"] == 4
    q = report["default"]
    assert q["mazes"] == 1 and 0 < q["mean_l0"] < 32 and q["features"] == 8 * 32
    assert set(q["meets_targets"]) == {"variance_explained", "mean_abs_delta_p_cheese", "mean_l0"}
    with safe_open(str(tiny_run / "dictionary.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["site"] == SITE and meta["checkpoint_sha256"] == ckpt.sha256 and meta["k"] == "4"
    assert meta["sparsity"] == "batchtopk"  # the default: its threshold travels in the file (measured again below)
    assert json.loads(meta["corpus_seeds"]) == [20, 22] and meta["steer_version"]
    table = list(csv.DictReader((tiny_run / "mazes.csv").open()))
    assert [(r["seed"], r["k"]) for r in table] == [("1000", "4"), ("1000", "8")]
    assert float(table[0]["delta_p_cheese"]) == pytest.approx(
        float(table[0]["p_cheese_replaced"]) - float(table[0]["p_cheese"])
    )
    assert (tiny_run / "tradeoff.png").is_file()
    check_tables(tiny_run)


def test_a_resumed_run_reuses_the_fit_and_measuring_the_file_gives_the_same_numbers(tiny_run, tmp_path) -> None:
    before = (tiny_run / "fit" / "dictionary-k4.safetensors").stat().st_mtime_ns
    spec = write_spec(tiny_run.parent, {"name": "tiny", **TINY})
    again = run("features", spec, "--out", tiny_run, "--workers", 1, "--force")
    assert again.exit_code == 0, again.output
    assert (tiny_run / "fit" / "dictionary-k4.safetensors").stat().st_mtime_ns == before  # not fitted again
    measured = run(
        "features",
        write_spec(tmp_path, {"seeds": [1000], "dictionary": str(tiny_run / "dictionary.safetensors")}),
        "--out",
        tmp_path / "m",
    )
    assert measured.exit_code == 0, measured.output
    a = json.loads((tiny_run / "metrics.json").read_text())["default"]
    b = json.loads((tmp_path / "m" / "metrics.json").read_text())["default"]
    assert a["variance_explained"] == b["variance_explained"] and a["delta_p_cheese"] == b["delta_p_cheese"]
    assert not (tmp_path / "m" / "corpus").exists()
    # The file changes under the run's folder: its cells were measured with the old one, so resuming refuses, at
    # the start (the file's sha256 is part of the run's identity), before any cell runs again.
    given = tmp_path / "given.safetensors"
    given.write_bytes((tiny_run / "dictionary-k8.safetensors").read_bytes())
    spec = write_spec(tmp_path, {"seeds": [1000], "dictionary": str(given)}, "given.yaml")
    assert run("features", spec, "--out", tmp_path / "g").exit_code == 0
    given.write_bytes((tiny_run / "dictionary.safetensors").read_bytes())
    mixed = run("features", spec, "--out", tmp_path / "g")
    assert mixed.exit_code == 2 and "holds the results of a different run" in " ".join(mixed.output.split())


def _other_checkpoint_file(path: Path, ckpt, **change: str) -> Path:
    sae = TopKSAE.identity(32)
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (1,), 1, FitSettings(k=64, expansion=2, epochs=1, seed=0), "")
    path.write_bytes(dictionary_bytes(sae, meta.to_strings() | change))
    return path


def _nan_file(path: Path, ckpt) -> Path:
    sae = TopKSAE.identity(32)
    with torch.no_grad():
        sae.W_dec[0, 0] = float("nan")
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (1,), 1, FitSettings(k=64, expansion=2, epochs=1, seed=0), "")
    path.write_bytes(dictionary_bytes(sae, meta.to_strings()))
    return path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"site": "block2.res9"}, "site: 'block2.res9' is not a hook point of this policy"),
        ({"site": "fc"}, "site: fc has activations of shape (256,), not a spatial map"),
        ({"corpus": []}, "corpus: the list is empty"),
        ({"fraction": float("nan")}, "fraction: nan is not a finite number"),
        ({"fraction": 0}, "fraction: 0 is not a fraction of the positions"),
        ({"seeds": [20]}, "seeds: 1 of the held-out mazes are in the corpus too (seed 20)"),
        ({"k": 200, "expansion": 2}, "k: 200 features active per position is more than the dictionary's 64"),
        ({"layer": SITE}, "layer: `steer features` reads the site named under `site:`"),
        ({"dictionary": "other"}, "fitted with checkpoint 'elsewhere' (sha256 000000000000…), not this run's"),
        ({"dictionary": "nan"}, "field 'W_dec': expected finite values, got a float32 tensor of shape [64, 32] with 1"),
        ({"dictionary": "missing.safetensors"}, "missing.safetensors' does not exist. Give a dictionary.safetensors"),
    ],
)
def test_bad_input_exits_2_with_nothing_written(tmp_path, ckpt, spec, message) -> None:
    if spec.get("dictionary") == "other":
        spec = {"dictionary": str(_other_checkpoint_file(tmp_path / "o.safetensors", ckpt, checkpoint="elsewhere",
                                                         checkpoint_sha256="0" * 64))}  # fmt: skip
    elif spec.get("dictionary") == "nan":
        spec = {"dictionary": str(_nan_file(tmp_path / "n.safetensors", ckpt))}
    result = run("features", write_spec(tmp_path, {**TINY, **spec}), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_corpus_rows_are_drawn_from_every_state_with_the_cheese_kept_and_removed(policy, easy) -> None:
    maze = easy.level(0)  # 3x3
    n = len(maze.open_squares())  # the cheese's square among them: a state only once the cheese is removed
    x, total = corpus_rows(policy, easy, maze, SITE, 1.0, seed=0, batch_size=64)
    assert total == (2 * (n - 1) + 2 * n) * 256 and x.shape == (total, 32) and np.isfinite(x).all()
    y, _ = corpus_rows(policy, easy, maze, SITE, 0.01, seed=0, batch_size=64)
    z, _ = corpus_rows(policy, easy, maze, SITE, 0.01, seed=1, batch_size=64)
    assert y.shape == (round(0.01 * total), 32) and not np.array_equal(y, z)


def test_a_replacement_that_is_not_finite_or_of_another_shape_stops_with_a_message(policy, easy) -> None:
    inputs = facing_inputs(easy, easy.level(0))
    with pytest.raises(NonFiniteError, match=r"with block2\.res1\.resadd_out replaced by a function of itself"):
        replaced_facing_fields(policy, inputs, SITE, [lambda a: a * float("nan")])
    with pytest.raises(SteerError, match=r"a replacement returned shape \(12, 32, 16\), not \(12, 32, 16, 16\)"):
        replaced_facing_fields(policy, inputs, SITE, [lambda a: a[..., 0]])
