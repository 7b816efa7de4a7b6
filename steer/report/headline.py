"""Claims tables in the docs, generated from a batch's claims.json so that no number is copied by hand.

    python -m steer.report.headline outputs/reproduce/claims.json     # after `make reproduce`; or `make results`
    python -m steer.report.headline outputs/discover/claims.json      # any batch with claims

keeps a copy of the claims (without the per-maze values, which stay in the run's claims.json) and of the
batch's sealing sentence (from the batch.json beside claims.json) in `docs/claims/<batch>.json`, and rewrites
every block between `<!-- claims:<batch>:start -->` and `<!-- claims:<batch>:end -->` in README.md and
docs/results.md from it. `tests/test_headline.py` checks that every block agrees with its snapshot.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steer.analysis.claims import two_samples
from steer.errors import SteerError
from steer.io import atomic_write_bytes
from steer.report.claims_text import SANITY_TITLE, counts_text, findings, multiplicity_lines, sanity_checks

PAGES = (Path("README.md"), Path("docs/results.md"))
SNAPSHOTS = Path("docs/claims")
_BLOCK = re.compile(r"<!-- claims:([A-Za-z0-9._-]+):start -->\n(.*?)<!-- claims:\1:end -->", re.S)


def markers(batch: str) -> tuple[str, str]:
    return f"<!-- claims:{batch}:start -->", f"<!-- claims:{batch}:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows_table(rows: Sequence[Mapping[str, Any]], two: bool) -> list[str]:
    samples = ["discovery sample", "replication sample"] if two else ["measured (95% CI, n)", "mazes moved"]
    lines = [f"| claim (the post) | verdict | {' | '.join(samples)} | criterion |", "|---|---|---|---|---|"]
    for r in rows:
        claim = ("*extra setting:* " if r.get("extra_setting") else "") + f"{r['post']} `{r['id']}`"
        verdict = f"**{r['verdict']}**" + (f" ({r['why']})" if r.get("why") else "")
        if two:
            measured = [f"{x['shown']}; moved: {x['steerability_shown']}" for x in (r["discovery"], r["replication"])]
        else:
            measured = [r["shown"], r.get("steerability_shown", "—")]
        lines.append("| " + " | ".join(_cell(x) for x in (claim, verdict, *measured, r["criterion"])) + " |")
    return lines


def headline_table(rows: Sequence[Mapping[str, Any]], sealed: str = "") -> str:
    """The sealing sentence; one line per finding (the post's sentence, the verdict, what each sample measured
    and the fractions of its mazes moved, the criterion); the sanity checks apart; the counts and multiplicity."""
    two = two_samples(list(rows))
    lines = [sealed, ""] if sealed else []
    lines += _rows_table(findings(rows), two)
    checks = sanity_checks(rows)
    if checks:
        lines += ["", f"*{SANITY_TITLE}* (never counted as findings):", "", *_rows_table(checks, two)]
    lines += ["", counts_text(rows)]
    for line in multiplicity_lines(list(rows)):
        lines += ["", line]
    return "\n".join(lines)


def replace_blocks(text: str, batch: str, table: str) -> str:
    """`text` with every block of `batch` replaced by `table` (text without one unchanged)."""
    start, end = markers(batch)
    if text.count(start) != text.count(end):
        raise SteerError(f"a page has {text.count(start)} {start} lines but {text.count(end)} {end} lines.")
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{start}\n\n{table}\n\n{end}", text)


def blocks_of(text: str) -> list[tuple[str, str]]:
    """(batch, table) of every claims block in `text`, as `headline_table` writes it."""
    return [(m[1], m[2].strip()) for m in _BLOCK.finditer(text)]


def _slim(value: Any) -> Any:
    """The claims without their per-maze values (the run folder's claims.json keeps them): what the table and a
    reader of the docs need, a small file to commit."""
    if isinstance(value, dict):
        return {k: _slim(v) for k, v in value.items() if k not in ("per_maze", "groups")}
    if isinstance(value, list):
        return [_slim(v) for v in value]
    return value


def snapshot(claims_json: Path) -> dict[str, Any]:
    """The committed copy of a run's claims: the batch's name, its sealing sentence, the slim rows."""
    run = json.loads((claims_json.parent / "batch.json").read_text())
    rows = json.loads(claims_json.read_text())
    return {"batch": run["batch"], "sealed": (run.get("seal") or {}).get("said", ""), "claims": _slim(rows)}


def table_of(snap: Mapping[str, Any]) -> str:
    return headline_table(snap["claims"], snap["sealed"])


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m steer.report.headline CLAIMS_JSON", file=sys.stderr)
        return 2
    snap = snapshot(Path(argv[0]))
    SNAPSHOTS.mkdir(exist_ok=True)
    target = SNAPSHOTS / f"{snap['batch']}.json"
    atomic_write_bytes(target, (json.dumps(snap, indent=1, ensure_ascii=False) + "\n").encode())
    table = table_of(snap)
    for page in PAGES:
        text = page.read_text()
        new = replace_blocks(text, snap["batch"], table)
        if new != text:
            atomic_write_bytes(page, new.encode())
            print(f"{page}: the {snap['batch']} claims table from {argv[0]}")
    print(f"{target}: a copy of {argv[0]} ({len(snap['claims'])} claims) and its sealing sentence")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
