"""A batch's claims as text: `summary.md`'s tables (findings, then the sanity checks), the verdict counts, the
multiplicity line, and JUnit XML. The rows are `steer.analysis.claims.evaluate`'s (or `replicated`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

from steer.analysis.claim_types import ClaimRow
from steer.analysis.claims import two_samples
from steer.analysis.verdicts import SAMPLES, VERDICTS

Row = ClaimRow
SANITY_TITLE = "Checks that the instrument works"
SANITY_NOTE = (
    "These hold at their own null by design (a zero vector moves nothing, say): they show that the instrument "
    "works and are never counted as findings, nor in the multiplicity family."
)


def findings(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if not r.get("sanity")]


def sanity_checks(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.get("sanity")]


def counts_text(rows: Sequence[Row]) -> str:
    """ "Findings: 12 holds, 3 fails (15 claims). Sanity checks: 2 holds." """

    def count(group: Sequence[Row]) -> str:
        counts = {v: sum(r["verdict"] == v for r in group) for v in VERDICTS}
        return ", ".join(f"{n} {v}" for v, n in counts.items() if n)

    found, checks = findings(rows), sanity_checks(rows)
    text = f"Findings: {count(found) or 'none'} ({len(found)} claims)."
    return text + (f" Sanity checks: {count(checks)} ({len(checks)})." if checks else "")


def multiplicity_text(rows: Sequence[Row]) -> str:
    """How many findings keep a paired-test p below 0.05 once adjusted over the batch (Holm)."""
    tested = [r for r in findings(rows) if r.get("wilcoxon_p_holm") is not None]
    kept = [r for r in tested if r["wilcoxon_p_holm"] < 0.05]
    holds = [r for r in tested if r["verdict"] == "holds"]
    kept_holds = [r for r in holds if r["wilcoxon_p_holm"] < 0.05]
    return (
        f"Multiplicity: {len(tested)} findings have a paired test (Wilcoxon); after Holm's adjustment over the batch "
        f"{len(kept)} keep p < 0.05 (family-wise 5%), and {len(kept_holds)} of the {len(holds)} that hold do."
    )


def multiplicity_lines(rows: Sequence[Row]) -> list[str]:
    """`multiplicity_text` of the batch, or of each sample where the rows hold two; none where no finding has a
    paired test (reported numbers alone)."""
    if not any(
        r.get("wilcoxon_p_holm") is not None
        or any((r.get(n) or {}).get("wilcoxon_p_holm") is not None for n in SAMPLES)
        for r in findings(rows)
    ):
        return []
    if two_samples(rows):
        return [f"{n.capitalize()} sample. " + multiplicity_text([{**r, **r[n]} for r in rows]) for n in SAMPLES]
    return [multiplicity_text(rows)]


def measured_text(r: Row) -> str:
    """The measurement, its Holm-adjusted p where it has a paired test, and the minimum detectable effect."""
    extra = []
    if r.get("wilcoxon_p_holm") is not None:
        extra.append(f"Holm p {r['wilcoxon_p_holm']:.2g}")
    if r.get("mde") is not None:
        extra.append(f"detectable at this n: {r['mde']:.3f}")
    return r["shown"] + (f"; {'; '.join(extra)}" if extra else "")


def _verdict_cell(r: Row) -> str:
    text = f"**{r['verdict']}**" + (f" ({r['why']})" if r["why"] else "")
    if r.get("sample_factor", 1) > 1:
        text += f"; its experiments grown to {r['sample_factor']}x their mazes"
    return text + (f" — expected {r['expect']}" if not r["as_expected"] else "")


def _sample_cell(x: Row) -> str:
    """One sample's measurement, its Holm p and detectable effect, the mazes moved, and its own verdict."""
    return f"{measured_text(x)}; moved: {x['steerability_shown']}; *{x['verdict']}*"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[Row], two: bool) -> list[str]:
    names = ["claim (the post)", "setting", "criterion"]
    if two:
        names += ["discovery", "replication", "pooled", "control (discovery)", "verdict"]
    else:
        names += ["measured", "mazes moved (control)", "control", "verdict"]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for r in rows:
        setting = ("*extra setting:* " if r["extra_setting"] else "") + r["setting"]
        figures = " ".join(f"[{Path(f).name}]({f})" for f in r["figures"])
        first = [f"{r['post']} `{r['id']}`", f"{setting} {figures}".strip(), r["criterion"]]
        control = r["control_shown"] + (" (a reference, shown only)" if r.get("control_role") == "reference" else "")
        if two:
            rest = [_sample_cell(r["discovery"]), _sample_cell(r["replication"]), r["pooled"]["shown"], control]
        else:
            moved = r["steerability_shown"]
            if r["control_steerability"] is not None:
                moved += f" (control: {r['control_steerability_shown']})"
            rest = [measured_text(r), moved, control]
        lines.append("| " + " | ".join(_cell(x) for x in [*first, *rest, _verdict_cell(r)]) + " |")
    return lines


def markdown(rows: Sequence[Row], header: str) -> str:
    """`summary.md`: the header, the findings' table, the sanity checks' table, the counts and multiplicity."""
    two = two_samples(rows)
    lines = [header, "", *_table(findings(rows), two)]
    checks = sanity_checks(rows)
    if checks:
        lines += ["", f"### {SANITY_TITLE}", "", SANITY_NOTE, "", *_table(checks, two)]
    lines += ["", counts_text(rows)]
    for line in multiplicity_lines(rows):
        lines += ["", line]
    return "\n".join(lines) + "\n"


def junit(rows: Sequence[Row], name: str) -> bytes:
    """One JUnit test case per claim (a sanity check's name says so): a failure where the verdict is not the
    expected one."""
    suite = ET.Element(
        "testsuite", name=name, tests=str(len(rows)), failures=str(sum(not r["as_expected"] for r in rows))
    )
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=name, name=("sanity: " if r.get("sanity") else "") + r["id"])
        if not r["as_expected"]:
            failure = ET.SubElement(case, "failure", message=f"verdict {r['verdict']}, expected {r['expect']}")
            failure.text = f"{r['post']}\n{r['criterion']}: {r['shown']}\n{r['why']}".strip()
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
