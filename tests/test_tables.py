"""Tidy tables and `steer.load_run`: every study's tables are checked against its JSON on a run folder its own test
already makes (`CHECKED`, tests/_tables.py); here the declarations, the docs generated from them, resume and
Parquet, and what load_run says of a folder it cannot read."""

from __future__ import annotations

import ast
import io
import json
import shutil
from pathlib import Path

import pytest
from _cli import write_spec
from _harness import ROOT
from _tables import check_tables

import steer
from steer.report.tables import (
    Column,
    Table,
    csv_writer,
    docs_block,
    docs_heading,
    parquet_available,
    replace_docs_block,
)
from steer.studies import STUDIES, documented_tables, run_spec

# Each study's tables are checked (tests/_tables.py's check_tables) in the test that already runs it.
CHECKED = {
    "activations": "test_probes.py::test_activations_then_probe_end_to_end",
    "apply": "test_tables.py::test_load_run_on_an_apply_run_with_its_control",
    "behaviour": "test_behaviour_study.py::test_files_and_figures",
    "behaviour-stats": "test_behaviour_stats.py::test_a_row_per_maze_and_condition",
    "channels": "test_retarget.py::test_channels_ranks_every_channel_with_intervals_and_a_shuffled_control",
    "compose": "test_studies.py::test_compose_two_vectors_at_two_layers",
    "compose-map": "test_compmap.py::test_compose_map_two_mazes",
    "compute-vector": "test_cli.py::test_compute_vector_then_apply_the_file_to_another_seed",
    "choose": "test_choose.py::test_the_replication_records_are_what_a_batch_claim_reads",
    "discover": "test_discover.py::test_the_stages_are_run_folders_and_the_report_records_the_choice",
    "dose-response": "test_dose.py::test_dose_response_end_to_end",
    "feature-map": "test_feature_map.py::test_the_study_writes_gains_a_claim_reads_its_ranking_and_cards",
    "features": "test_features.py::test_the_study_writes_its_dictionaries_metrics_and_table",
    "layer-sweep": "test_studies.py::test_layer_sweep_measures_each_layer",
    "probe": "test_probes.py::test_activations_then_probe_end_to_end",
    "retarget": "test_retarget.py::test_retarget_reports_every_target_under_every_condition",
    "steerability": "test_steerability.py::test_tables_hold_a_row_per_maze_site_and_coefficient",
    "sweep-coeff": "test_studies.py::test_sweep_coeff_on_cheese_removed_mazes",
    "transfer": "test_studies.py::test_transfer_matrix_heat_map_and_fields",
}


def test_every_study_declares_its_tables_and_a_test_checks_them_on_a_real_run() -> None:
    assert set(CHECKED) == set(STUDIES)
    for name, where in CHECKED.items():
        assert STUDIES[name].tables, name
        file, function = where.split("::")
        tree = ast.parse((ROOT / "tests" / file).read_text())
        (found,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
        calls = [n for n in ast.walk(found) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "check_tables"]
        assert calls, f"{where} does not call check_tables"


def test_every_study_but_probe_writes_a_mazes_table() -> None:
    # probe's cells are sites (a probe over every maze), so it has no row per maze; its table is probes.csv.
    without = {name for name, s in STUDIES.items() if "mazes" not in [t.table.name for t in s.tables]}
    assert without == {"probe"}


def test_docs_outputs_lists_every_column_the_code_writes() -> None:
    text = (ROOT / "docs" / "outputs.md").read_text()
    block = docs_block(documented_tables())
    assert replace_docs_block(text, block) == text, "docs/outputs.md is stale: run `make tables-doc`"
    for name, tables in documented_tables().items():  # and so every column, by name, type and unit, under its command
        for table in tables:
            assert docs_heading(name, table) in text
            for c in table.columns:
                assert f"`{c.name}`" in text and c.about.replace("|", "\\|") in text


def _written(table: Table, rows: list[dict]) -> str:
    buffer = io.BytesIO()
    csv_writer(table, lambda: iter(rows))(buffer)
    return buffer.getvalue().decode()


def test_a_row_is_written_in_its_columns_types_and_a_key_not_declared_is_refused() -> None:
    table = Table(
        "t",
        "a row",
        (
            Column("n", "int", "", "a"),
            Column("x", "float", "", "b"),
            Column("s", "str", "", "c"),
            Column("b", "bool", "", "d"),
        ),
    )
    text = _written(table, [{"n": 3.0, "x": 0.1, "s": "NA, here", "b": True}, {"x": float("nan")}])
    assert text == 'n,x,s,b\n3,0.1,"NA, here",true\n,,,\n'  # floats as the shortest text that reads back the same
    with pytest.raises(KeyError, match="declare them"):
        _written(table, [{"n": 1, "undeclared": 2}])
    for bad in ({"n": 1.5}, {"x": "0.1"}, {"s": 3}, {"b": 1}, {"x": {"original": 0.1}}):
        with pytest.raises(TypeError):
            _written(table, [bad])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-maze apply run with its random control: what the tests below load, resume and break."""
    folder = tmp_path_factory.mktemp("tables")
    spec = {"name": "small", "seeds": [0, 1], "vector": {"kind": "cheese"}, "coeff": -1, "controls": ["random"]}
    run_spec("apply", write_spec(folder, spec), out=folder / "run")
    return folder / "run"


def test_a_resumed_run_writes_its_tables_again_byte_for_byte(small: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    shutil.copytree(small, again)
    tables = ["mazes.csv", "tables.json", *(["mazes.parquet"] if parquet_available() else [])]
    for name in (*tables, "metrics.json"):
        (again / name).unlink()
    manifest = json.loads((again / "manifest.json").read_text())
    manifest["status"] = "interrupted"  # as a run stopped after its last cell
    (again / "manifest.json").write_text(json.dumps(manifest))
    report = run_spec("apply", small.parent / "spec.yaml", out=again)
    assert report["reused_cells"] == 2
    for name in tables:
        assert (again / name).read_bytes() == (small / name).read_bytes(), name


def test_load_run_on_an_apply_run_with_its_control(small: Path) -> None:
    run = check_tables(small)
    mazes = run.mazes
    assert list(mazes["condition"]) == ["original", "patched", "control:random"] * 2
    report = json.loads((small / "metrics.json").read_text())
    for m in report["mazes"]:
        rows = mazes[mazes["seed"] == m["seed"]].set_index("condition")
        assert rows.loc["original", "p_toward_cheese"] == m["p_toward_cheese"]["original"]
        assert rows.loc["patched", "p_toward_cheese"] == m["p_toward_cheese"]["patched"]
        assert rows.loc["patched", "mean_tv"] == m["mean_tv"] and pd_isna(rows.loc["original", "mean_tv"])
        assert rows.loc["control:random", "mean_tv"] == m["controls"]["random"]["mean_tv"]
        assert rows.loc["control:random", "vector_norm"] == m["controls"]["random"]["norm"]
    assert run.figure("field-seed1.png").size == run.figure("field-seed1").size
    both = steer.compare_runs([run, small], names=["a", "b"])
    assert list(both.columns[:2]) == ["run", "seed"] and len(both) == 2 * len(mazes)
    assert both.groupby("run")["p_cheese_ds"].sum().nunique() == 1  # the same run twice


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


@pytest.mark.skipif(not parquet_available(), reason="pyarrow is not installed (the optional extra `parquet`)")
def test_parquet_holds_the_same_table_as_the_csv(small: Path) -> None:
    import pandas as pd

    run = steer.load_run(small)
    assert "mazes.parquet" in run.files
    parquet = pd.read_parquet(small / "mazes.parquet")
    csv = run.mazes
    assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv)
    for column in csv.columns:
        assert [None if pd.isna(v) else v for v in parquet[column]] == [None if pd.isna(v) else v for v in csv[column]]


# -- what load_run says of a folder it cannot read (docs/trust.md's bad-input table) ----------------------------


def test_load_run_refuses_a_path_that_is_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(steer.SteerError, match=r"is not a folder\. Give the folder a steer command wrote"):
        steer.load_run(tmp_path / "nowhere")
    with pytest.raises(steer.SteerError, match=r"holds neither manifest\.json .* nor batch\.json"):
        steer.load_run(tmp_path)


def test_load_run_refuses_an_unfinished_run_and_says_to_resume_it(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "stopped"
    shutil.copytree(small, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        steer.SteerError, match=r"has not finished \(its status is interrupted\)\. Run the same command"
    ):
        steer.load_run(folder)


def test_an_old_run_without_tables_loads_and_says_how_to_write_them(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(small, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["reports"] = [r for r in manifest["reports"] if r in ("metrics.json", "report.html")]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for name in ("mazes.csv", "tables.json", "mazes.parquet"):
        (folder / name).unlink(missing_ok=True)
    run = steer.load_run(folder)  # its report, spec and figures still load
    assert run.summary["mazes"] == 2 and run.tables == ()
    with pytest.raises(steer.SteerError, match=r"has no tables: .* Run it again \(`steer apply SPEC --out"):
        _ = run.mazes


def test_a_missing_figure_or_table_lists_what_the_run_has(small: Path) -> None:
    run = steer.load_run(small)
    with pytest.raises(
        steer.SteerError, match=r"'field-seed7' is not a figure .* Its figures: field-seed0.png, field-seed1.png\.$"
    ):
        run.figure("field-seed7")
    with pytest.raises(steer.SteerError, match=r"has no table 'targets'; its tables: mazes"):
        run.table("targets")
    with pytest.raises(steer.SteerError, match="is a single apply run, not a batch"):
        _ = run.claims
    with pytest.raises(steer.SteerError, match="two runs are named run; pass names="):
        steer.compare_runs([run, run])


def test_a_manifest_naming_files_outside_its_folder_is_not_followed(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "edited"
    shutil.copytree(small, folder)
    (tmp_path / "secret.png").write_bytes((small / "field-seed0.png").read_bytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["reports"] += ["../secret.png", "/etc/passwd"]
    manifest["cells"]["seed-0"]["files"].append("../secret.png")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    run = steer.load_run(folder)
    assert not [f for f in run.files if ".." in f or f.startswith("/")]
    with pytest.raises(steer.SteerError, match="is not a figure"):
        run.figure("../secret.png")
    manifest["reports"][0] = "../secret.png"  # the report itself named outside: refused, not read
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(steer.SteerError, match=r"has no '\.\./secret\.png' \(the run's report\) inside it"):
        steer.load_run(folder)


def test_a_damaged_tables_json_is_refused_naming_the_file(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(small, folder)
    schema = json.loads((folder / "tables.json").read_text())
    schema["tables"][0]["columns"][0]["type"] = "complex"
    (folder / "tables.json").write_text(json.dumps(schema))
    run = steer.load_run(folder)
    with pytest.raises(steer.SteerError, match=r"tables\.json' does not list the columns of 'mazes' as steer writes"):
        _ = run.mazes
