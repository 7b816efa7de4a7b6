"""Claims tables in README.md and docs/results.md are generated from the committed claims snapshots
(steer/report/headline.py), never copied by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _harness import ROOT

from steer.analysis.verdicts import VERDICTS
from steer.errors import SteerError
from steer.report.headline import PAGES, blocks_of, headline_table, markers, replace_blocks, snapshot, table_of


def _snapshots() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "docs" / "claims").glob("*.json"))}


def test_every_claims_block_in_the_docs_is_the_one_generated_from_its_committed_snapshot() -> None:
    snaps = _snapshots()
    assert "reproduce" in snaps and len(snaps["reproduce"]["claims"]) >= 19
    seen = set()
    for page in PAGES:
        for batch, table in blocks_of((ROOT / page).read_text()):
            assert batch in snaps, f"{page} has a claims block for {batch}, which has no docs/claims/{batch}.json"
            assert table == table_of(snaps[batch], page), f"{page}'s {batch} block is not its snapshot's table"
            seen.add(batch)
    assert seen == set(snaps), "a committed snapshot that no page shows"
    for name, snap in snaps.items():
        assert snap["batch"] == name and {r["verdict"] for r in snap["claims"]} <= set(VERDICTS)
        assert "per_maze" not in json.dumps(snap)  # a snapshot to commit, not the run's file


def test_the_table_puts_sanity_checks_apart_and_the_blocks_are_replaced_in_place() -> None:
    rows = _snapshots()["reproduce"]["claims"][:3]
    assert "replication" in rows[0]  # the committed claims are judged on two samples
    rows[1] = {**rows[1], "verdict": "does not replicate", "extra_setting": True}
    rows[1]["replication"] = {**rows[1]["replication"], "shown": "mean +0.5 | odd"}
    rows[2] = {**rows[2], "sanity": True, "verdict": "holds"}
    table = headline_table(rows, "Criteria sealed before the replication sample was opened.")
    assert table.startswith("Criteria sealed before")
    assert "**does not replicate**" in table and "*extra setting:*" in table and "+0.5 \\| odd" in table
    assert "| discovery sample | replication sample |" in table
    findings, checks = table.split("*Checks that the instrument works*")
    assert rows[2]["id"] in checks and rows[2]["id"] not in findings
    assert "Findings: " in table and "(2 claims). Sanity checks: 1 holds (1)." in table
    single = [{k: v for k, v in r.items() if k not in ("discovery", "replication", "pooled")} for r in rows]
    assert "| measured (95% CI, n) | mazes moved |" in headline_table(single)
    start, end = markers("demo")
    text = f"intro\n{start}\nold table\n{end}\nrest\n{start}\nagain\n{end}\n"
    assert replace_blocks(text, "demo", "T") == f"intro\n{start}\n\nT\n\n{end}\nrest\n{start}\n\nT\n\n{end}\n"
    assert replace_blocks(text, "other", "T") == text


def test_unbalanced_markers_are_refused() -> None:
    start, _ = markers("demo")
    with pytest.raises(SteerError, match="claims:demo:end"):
        replace_blocks(f"{start}\nno end", "demo", "T")


def test_a_snapshot_carries_the_batch_s_sealing_sentence(tmp_path: Path) -> None:
    (tmp_path / "batch.json").write_text(json.dumps({"batch": "b", "seal": {"said": "Criteria sealed…"}}))
    (tmp_path / "claims.json").write_text(json.dumps([{"id": "x", "verdict": "holds", "per_maze": [1, 2]}]))
    snap = snapshot(tmp_path / "claims.json")
    assert snap == {"batch": "b", "sealed": "Criteria sealed…", "claims": [{"id": "x", "verdict": "holds"}]}
