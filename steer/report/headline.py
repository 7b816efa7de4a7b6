"""Claims tables in the docs, generated from a batch's claims.json so that no number is copied by hand.

    python -m steer.report.headline outputs/reproduce/claims.json     # after `make reproduce`; or `make results`
    python -m steer.report.headline outputs/discover/claims.json      # any batch with claims

keeps a copy of the claims (without the per-maze values, which stay in the run's claims.json) and of the
batch's sealing sentence (from the batch.json beside claims.json) in `docs/claims/<batch>.json`, draws the claims
chart from that copy as `docs/claims/<batch>.png` and `.svg` (steer.report.claims_chart), and rewrites every
block between `<!-- claims:<batch>:start -->` and `<!-- claims:<batch>:end -->` in README.md and docs/results.md
from it: the sealing sentence, the chart, the table. `tests/test_headline.py` checks that every block agrees
with its snapshot.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steer.analysis.claims import two_samples
from steer.errors import SteerError
from steer.io import atomic_write_bytes
from steer.report.claims_chart import claims_chart
from steer.report.claims_text import SANITY_TITLE, counts_text, findings, multiplicity_lines, sanity_checks
from steer.report.figures import save_figure

PAGES = (Path("README.md"), Path("docs/results.md"))
SNAPSHOTS = Path("docs/claims")
CHART_FORMATS = ("png", "svg")
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


def chart_lines(batch: str, page: Path) -> list[str]:
    """The claims chart as `page` shows it: the PNG (a path from the page's folder, which GitHub and mkdocs both
    resolve) and a link to its SVG."""
    png, svg = (Path(os.path.relpath(chart_path(batch, fmt), page.parent)).as_posix() for fmt in CHART_FORMATS)
    return [
        f"![The {batch} claims: each claim's 95% intervals against its criterion's threshold, coloured by verdict]"
        f"({png})",
        "",
        f"*The claims at a glance* ([SVG]({svg})): one row per claim, each sample's 95% interval and estimate on "
        "the row's own x axis (the claims' units differ), the threshold dashed (a band for an equivalence claim), "
        "no effect in grey, the verdict as colour; the table below has every number.",
    ]


def chart_path(batch: str, fmt: str = "png") -> Path:
    return SNAPSHOTS / f"{batch}.{fmt}"


def headline_table(rows: Sequence[Mapping[str, Any]], sealed: str = "", chart: Sequence[str] = ()) -> str:
    """The sealing sentence; the claims chart (`chart_lines`, when given); one line per finding (the post's
    sentence, the verdict, what each sample measured and the fractions of its mazes moved, the criterion); the
    sanity checks apart; the counts and multiplicity."""
    two = two_samples(list(rows))
    lines = [sealed, ""] if sealed else []
    lines += [*chart, ""] if chart else []
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


def table_of(snap: Mapping[str, Any], page: Path) -> str:
    """A snapshot's block as `page` (a path from the repository's root) shows it."""
    return headline_table(snap["claims"], snap["sealed"], chart_lines(snap["batch"], page))


def write_chart(snap: Mapping[str, Any]) -> list[str]:
    """The claims chart of a snapshot, beside it in docs/claims/; the names written."""
    chart = claims_chart(snap["claims"], f"{snap['batch']}: claims")
    return save_figure(chart, chart_path(snap["batch"]), CHART_FORMATS)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m steer.report.headline CLAIMS_JSON", file=sys.stderr)
        return 2
    snap = snapshot(Path(argv[0]))
    SNAPSHOTS.mkdir(exist_ok=True)
    target = SNAPSHOTS / f"{snap['batch']}.json"
    atomic_write_bytes(target, (json.dumps(snap, indent=1, ensure_ascii=False) + "\n").encode())
    charts = write_chart(snap)
    for page in PAGES:
        text = page.read_text()
        new = replace_blocks(text, snap["batch"], table_of(snap, page))
        if new != text:
            atomic_write_bytes(page, new.encode())
            print(f"{page}: the {snap['batch']} claims table from {argv[0]}")
    print(f"{target}: a copy of {argv[0]} ({len(snap['claims'])} claims) and its sealing sentence")
    print(f"{SNAPSHOTS}: its claims chart, {' and '.join(charts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
