"""The README's headline table is generated from claims.json (steer/report/headline.py), never copied by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steer.analysis.claims import VERDICTS
from steer.errors import SteerError
from steer.report.headline import END, START, block_of, headline_table, replace_block

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_table_is_the_one_generated_from_the_committed_claims() -> None:
    rows = json.loads((ROOT / "docs" / "claims.json").read_text())
    assert len(rows) >= 19 and {r["verdict"] for r in rows} <= set(VERDICTS)
    assert block_of((ROOT / "README.md").read_text()) == headline_table(rows)
    assert "per_maze" not in (ROOT / "docs" / "claims.json").read_text()  # a snapshot to commit, not the run's file


def test_the_table_follows_the_claims_and_the_block_is_replaced_in_place() -> None:
    rows = json.loads((ROOT / "docs" / "claims.json").read_text())[:2]
    assert "replication" in rows[0]  # the committed claims are judged on two samples
    rows[1] = {**rows[1], "verdict": "does not replicate", "extra_setting": True}
    rows[1]["replication"] = {**rows[1]["replication"], "shown": "mean +0.5 | odd"}
    table = headline_table(rows)
    assert table.count("\n| ") == 2 and "**does not replicate**" in table and "*extra setting:*" in table
    assert "| discovery sample | replication sample |" in table and "+0.5 \\| odd" in table
    assert "Verdicts: 1 holds, 1 does not replicate (2 claims)." in table and "Replication sample." in table
    single = [{k: v for k, v in r.items() if k not in ("discovery", "replication", "pooled")} for r in rows]
    one = headline_table(single)
    assert "| measured (95% CI, n) | mazes moved |" in one and "Replication sample." not in one
    text = f"intro\n{START}\nold table\n{END}\nrest\n"
    assert replace_block(text, table) == f"intro\n{START}\n\n{table}\n\n{END}\nrest\n"


def test_a_readme_without_one_block_is_refused() -> None:
    with pytest.raises(SteerError, match="claims:start"):
        replace_block("no markers here", "table")
