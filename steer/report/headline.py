"""The README's headline results table, generated from a batch's claims.json so that no number is copied by hand.

    python -m steer.report.headline outputs/reproduce/claims.json     # after `make reproduce`; or `make results`

rewrites the block between `<!-- claims:start -->` and `<!-- claims:end -->` in README.md and keeps a copy of
the claims it came from in docs/claims.json (without the per-maze values, which stay in the run's claims.json);
`tests/test_headline.py` checks that the two agree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steer.analysis.claims import VERDICTS, multiplicity_lines, two_samples
from steer.errors import SteerError
from steer.io import atomic_write_bytes

START, END = "<!-- claims:start -->", "<!-- claims:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def headline_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per claim: the post's sentence, the verdict, what each sample measured and the fractions of its
    mazes moved the claimed way and the opposite way, the criterion; then the counts and the multiplicity."""
    two = two_samples(list(rows))
    samples = ["discovery sample", "replication sample"] if two else ["measured (95% CI, n)", "mazes moved"]
    lines = [
        f"| claim (the post) | verdict | {' | '.join(samples)} | criterion (set before the run) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        claim = ("*extra setting:* " if r.get("extra_setting") else "") + f"{r['post']} `{r['id']}`"
        verdict = f"**{r['verdict']}**" + (f" ({r['why']})" if r.get("why") else "")
        if two:
            measured = [f"{x['shown']}; moved: {x['steerability_shown']}" for x in (r["discovery"], r["replication"])]
        else:
            measured = [r["shown"], r.get("steerability_shown", "—")]
        lines.append("| " + " | ".join(_cell(x) for x in (claim, verdict, *measured, r["criterion"])) + " |")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    lines += ["", "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" ({len(rows)} claims)."]
    if two or any("wilcoxon_p_holm" in r for r in rows):  # rows from before Holm have no such line
        for line in multiplicity_lines(list(rows)):
            lines += ["", line]
    return "\n".join(lines)


def replace_block(text: str, table: str) -> str:
    """`text` with the claims block's contents replaced by `table`."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise SteerError(f"README: needs exactly one {START} line followed by one {END} line.")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n\n{table}\n\n{END}{tail}"


def block_of(text: str) -> str:
    """The table between the markers, as `headline_table` writes it."""
    return text.split(START)[1].split(END)[0].strip()


def _slim(value: Any) -> Any:
    """The claims without their per-maze values (the run folder's claims.json keeps them): what the table and a
    reader of the docs need, a small file to commit."""
    if isinstance(value, dict):
        return {k: _slim(v) for k, v in value.items() if k != "per_maze"}
    if isinstance(value, list):
        return [_slim(v) for v in value]
    return value


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m steer.report.headline CLAIMS_JSON", file=sys.stderr)
        return 2
    rows = json.loads(Path(argv[0]).read_text())
    readme, snapshot = Path("README.md"), Path("docs/claims.json")
    atomic_write_bytes(readme, replace_block(readme.read_text(), headline_table(rows)).encode())
    atomic_write_bytes(snapshot, (json.dumps(_slim(rows), indent=1, ensure_ascii=False) + "\n").encode())
    print(f"{readme}: the headline table from {argv[0]} ({len(rows)} claims); a copy in {snapshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
