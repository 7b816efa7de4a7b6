"""Claims: a sentence of the post, the setting that tests it, a criterion written before the run, a verdict.

A batch file may carry `claims:`; each is evaluated mechanically from its experiments' metrics.json once the
batch has run. A measurement is a statistic over mazes with its 95% bootstrap interval; the criterion is on
the interval, so a verdict is

- holds:        the whole interval lies on the claimed side of the threshold (or inside the claimed band);
- fails:        the whole interval lies on the other side (or outside the band);
- inconclusive: the interval straddles the threshold;
- vacuous:      a precondition does not hold (e.g. the agent never pursues the cheese, a ceiling), or too few
                mazes to measure.

    - id: cheese-subtract
      post: "…the post's sentence…"
      setting: "each maze's own cheese vector × −1 at block2.res1.resadd_out, seeds 0–99 (the post's)"
      measure: {experiment: cheese-100, metric: p_cheese_ds, kind: change}
      criterion: {statistic: mean, below: -0.3}
      control: {experiment: cheese-100, metric: p_cheese_ds, kind: change, source: controls.random}
      precondition: {measure: {…}, criterion: {…}, reason: "the agent pursues the cheese"}
      expect: holds

Measurement kinds (over one value per maze):
- change: patched − original of a field metric (Wilcoxon p-value too);
- value:  one number per maze (`side: patched|original` of a field metric, or a comparison metric);
- versus: `metric` of this measure minus the same maze's value in `minus:` (another measure), e.g. both
          vectors together vs −cheese alone;
- trend:  per maze, Spearman's rho between `coeffs:` and the patched value at each (a sweep).
Rows: `coeff:` picks a sweep's row, `layer:` a layer sweep's, `source:` a sub-record (`controls.random`,
`controls.input_edit`, `singles.0`), `pairs: own|same_dim|other_dim` a transfer's pairs, `where:` filters
mazes ({key: maze_dim, below: 9}, {key: p_cheese_ds.original, below: 0.95}).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
from scipy import stats as sps

from steer.analysis.metrics import describe, fmt
from steer.analysis.stats import paired_values, wilcoxon_p
from steer.errors import SteerError, excerpt

VERDICTS = ("holds", "fails", "inconclusive", "vacuous")
KINDS = ("change", "value", "versus", "trend")
MIN_MAZES = 5


@dataclass(frozen=True)
class Claim:
    id: str
    post: str
    setting: str
    measure: dict[str, Any]
    criterion: dict[str, Any]
    control: dict[str, Any] | None = None
    precondition: dict[str, Any] | None = None
    expect: str | None = None
    figures: tuple[str, ...] = ()
    extra: bool = False  # a second setting, not the post's own: labelled as such


# -- parsing ---------------------------------------------------------------------------------------

_CLAIM_KEYS = ("id", "post", "setting", "measure", "criterion", "control", "precondition", "expect", "figures", "extra")


def parse_claims(value: Any, experiments: Sequence[str]) -> tuple[Claim, ...]:
    """The `claims:` of a batch file, checked against its experiment names before anything runs."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SteerError(f"claims: expected a list of claims, got {excerpt(value)}.")
    out = []
    for i, item in enumerate(value):
        where = f"claims[{i}]"
        if not isinstance(item, dict):
            raise SteerError(f"{where}: expected a mapping with id, post, setting, measure and criterion.")
        unknown = [k for k in item if k not in _CLAIM_KEYS]
        if unknown:
            raise SteerError(f"{where}.{excerpt(unknown[0])}: unknown key. Valid keys: {', '.join(_CLAIM_KEYS)}.")
        for key in ("id", "post", "setting", "measure", "criterion"):
            if item.get(key) is None:
                raise SteerError(f"{where}.{key}: missing.")
        _check_measure(item["measure"], f"{where}.measure", experiments)
        _check_criterion(item["criterion"], f"{where}.criterion")
        if item.get("control") is not None:
            _check_measure(item["control"], f"{where}.control", experiments)
        pre = item.get("precondition")
        if pre is not None:
            if not isinstance(pre, dict) or "measure" not in pre or "criterion" not in pre:
                raise SteerError(f"{where}.precondition: expected {{measure, criterion, reason}}.")
            _check_measure(pre["measure"], f"{where}.precondition.measure", experiments)
            _check_criterion(pre["criterion"], f"{where}.precondition.criterion")
        if item.get("expect") is not None and item["expect"] not in VERDICTS:
            raise SteerError(f"{where}.expect: {excerpt(item['expect'])} is not one of {', '.join(VERDICTS)}.")
        out.append(
            Claim(
                str(item["id"]),
                str(item["post"]),
                str(item["setting"]),
                item["measure"],
                item["criterion"],
                item.get("control"),
                pre,
                item.get("expect"),
                tuple(item.get("figures") or ()),
                bool(item.get("extra", False)),
            )
        )
    ids = [c.id for c in out]
    if len(set(ids)) < len(ids):
        raise SteerError("claims: two claims share an id; give each its own.")
    return tuple(out)


def _check_measure(m: Any, where: str, experiments: Sequence[str]) -> None:
    if not isinstance(m, dict):
        raise SteerError(f"{where}: expected a mapping with experiment, metric and kind.")
    if m.get("experiment") not in experiments:
        raise SteerError(f"{where}.experiment: {excerpt(m.get('experiment'))} is not an experiment of this batch.")
    if m.get("kind", "change") not in KINDS:
        raise SteerError(f"{where}.kind: {excerpt(m.get('kind'))} is not one of {', '.join(KINDS)}.")
    if not isinstance(m.get("metric"), str):
        raise SteerError(f"{where}.metric: missing; name a metric such as p_cheese_ds.")
    if m.get("kind") == "versus":
        _check_measure(m.get("minus"), f"{where}.minus", experiments)


def _check_criterion(c: Any, where: str) -> None:
    if not isinstance(c, dict) or sum(k in c for k in ("above", "below", "within")) != 1:
        raise SteerError(
            f"{where}: expected one of {{above: x}}, {{below: x}}, {{within: [lo, hi]}}, "
            "with an optional statistic: mean | median."
        )
    if c.get("statistic", "mean") not in ("mean", "median"):
        raise SteerError(f"{where}.statistic: use mean or median.")


# -- measuring -------------------------------------------------------------------------------------


def _get(record: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if record is None:
            return None
        record = record[int(key)] if isinstance(record, list) else record.get(key)
    return record


def _rows(report: dict[str, Any], m: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per maze (or per transfer pair) that the measure reads, keyed by seed."""
    if "pairs" in m:
        pick = {
            "own": lambda p: p["source"] == p["target"],
            "same_dim": lambda p: p["source"] != p["target"] and p["same_maze_dim"],
            "other_dim": lambda p: not p["same_maze_dim"],
        }[m["pairs"]]
        rows = [
            {
                **p["metrics"],
                "seed": (p["source"], p["target"]),
                "maze_dim": p["target_maze_dim"],
                "source_maze_dim": p["source_maze_dim"],
            }
            for p in report["pairs"]
            if pick(p)
        ]
    else:
        rows = []
        for maze in report["mazes"]:
            row = maze
            if "coeff" in m:
                row = {**maze, **next(r for r in maze["by_coeff"] if r["coeff"] == m["coeff"])}
            if "layer" in m:
                row = {**maze, **next(r for r in maze["by_layer"] if r["layer"] == m["layer"])}
            rows.append(row)
    for cond in m.get("where", ()):
        value_of: Callable[[dict[str, Any]], Any] = lambda r, k=cond["key"]: _get(r, k)  # noqa: E731
        if "below" in cond:
            rows = [r for r in rows if value_of(r) is not None and value_of(r) < cond["below"]]
        if "above" in cond:
            rows = [r for r in rows if value_of(r) is not None and value_of(r) > cond["above"]]
        if "equals" in cond:
            rows = [r for r in rows if value_of(r) == cond["equals"]]
    return rows


def _per_maze(rows: list[dict[str, Any]], m: dict[str, Any]) -> dict[Any, Any]:
    out = {}
    for row in rows:
        rec = _get(row, m["source"]) if m.get("source") else row
        value = None if rec is None else rec.get(m["metric"])
        if isinstance(value, dict):
            side = m.get("side")
            value = (
                value[side]
                if side
                else (
                    None
                    if value["original"] is None or value["patched"] is None
                    else value["patched"] - value["original"]
                )
            )
        out[_key(row["seed"])] = value
    return out


def _key(seed: Any) -> Any:
    return tuple(seed) if isinstance(seed, list) else seed


def measure(reports: dict[str, dict[str, Any]], m: dict[str, Any]) -> dict[str, Any]:
    """A measure's summary: n, mean, median, their intervals, and a p-value where the kind has one."""
    report = reports[m["experiment"]]
    kind = m.get("kind", "change")
    if kind == "trend":
        coeffs = list(m["coeffs"])
        by = [_per_maze(_rows(report, {**m, "coeff": c}), {**m, "side": "patched"}) for c in coeffs]
        rhos = []
        for seed in by[0]:
            ys = [b.get(seed) for b in by]
            if all(y is not None for y in ys) and len(set(ys)) > 1:
                rhos.append(float(sps.spearmanr(coeffs, ys).statistic))
        x = np.array(rhos)
        return {**describe(rhos), "wilcoxon_p": wilcoxon_p(x, np.zeros_like(x)), "what": "Spearman rho per maze"}
    values = _per_maze(_rows(report, m), m)
    if kind == "versus":
        other = _per_maze(_rows(reports[m["minus"]["experiment"]], m["minus"]), m["minus"])
        seeds = [s for s in values if s in other]
        before, after = paired_values([other[s] for s in seeds], [values[s] for s in seeds])
        return {**describe(list(after - before)), "wilcoxon_p": wilcoxon_p(after, before)}
    if kind == "change" and m.get("side") is None:
        rows = _rows(report, m)
        recs = [(_get(r, m["source"]) if m.get("source") else r) for r in rows]
        pairs = [rec[m["metric"]] for rec in recs if rec is not None and isinstance(rec.get(m["metric"]), dict)]
        before, after = paired_values([p["original"] for p in pairs], [p["patched"] for p in pairs])
        return {**describe(list(after - before)), "wilcoxon_p": wilcoxon_p(after, before)}
    return describe(list(values.values()))


def verdict(result: dict[str, Any], criterion: dict[str, Any]) -> str:
    """holds / fails / inconclusive from the interval of the criterion's statistic (vacuous: too few mazes)."""
    stat = criterion.get("statistic", "mean")
    ci = result.get(f"{stat}_ci")
    if result.get("n", 0) < criterion.get("min_n", MIN_MAZES) or ci is None:
        return "vacuous"
    low, high = ci
    if "above" in criterion:
        return "holds" if low > criterion["above"] else "fails" if high <= criterion["above"] else "inconclusive"
    if "below" in criterion:
        return "holds" if high < criterion["below"] else "fails" if low >= criterion["below"] else "inconclusive"
    lo, hi = criterion["within"]
    if lo <= low and high <= hi:
        return "holds"
    return "fails" if high < lo or low > hi else "inconclusive"


def describe_criterion(c: dict[str, Any]) -> str:
    stat = c.get("statistic", "mean")
    if "above" in c:
        return f"95% CI of the {stat} above {c['above']:g}"
    if "below" in c:
        return f"95% CI of the {stat} below {c['below']:g}"
    return f"95% CI of the {stat} within [{c['within'][0]:g}, {c['within'][1]:g}]"


def _shown(result: dict[str, Any] | None, stat: str = "mean") -> str:
    if result is None:
        return "—"
    ci = result.get(f"{stat}_ci")
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    p = f", Wilcoxon p {result['wilcoxon_p']:.2g}" if result.get("wilcoxon_p") is not None else ""
    return f"{stat} {fmt(result.get(stat), 3)}{interval} (n {result.get('n', 0)}{p})"


def evaluate(claims: Sequence[Claim], out: Path) -> list[dict[str, Any]]:
    """Every claim's measurement, control, precondition and verdict, from the experiments' metrics.json."""
    names = {c.measure["experiment"] for c in claims} | {c.control["experiment"] for c in claims if c.control}
    names |= {c.precondition["measure"]["experiment"] for c in claims if c.precondition}
    names |= {c.measure["minus"]["experiment"] for c in claims if c.measure.get("kind") == "versus"}
    reports = {name: json.loads((out / name / "metrics.json").read_text()) for name in names}
    rows = []
    for claim in claims:
        stat = claim.criterion.get("statistic", "mean")
        result = measure(reports, claim.measure)
        got = verdict(result, claim.criterion)
        why = ""
        if claim.precondition is not None:
            pre = measure(reports, claim.precondition["measure"])
            if verdict(pre, claim.precondition["criterion"]) != "holds":
                got = "vacuous"
                why = (
                    f"precondition not met: {claim.precondition.get('reason', '')} "
                    f"({describe_criterion(claim.precondition['criterion'])}; measured "
                    f"{_shown(pre, claim.precondition['criterion'].get('statistic', 'mean'))})"
                )
        if got == "vacuous" and not why:
            why = f"fewer than {claim.criterion.get('min_n', MIN_MAZES)} mazes to measure"
        control = measure(reports, claim.control) if claim.control else None
        rows.append(
            {
                "id": claim.id,
                "post": claim.post,
                "setting": claim.setting,
                "extra_setting": claim.extra,
                "criterion": describe_criterion(claim.criterion),
                "measured": result,
                "shown": _shown(result, stat),
                "control": control,
                "control_shown": _shown(control, stat) if control else "—",
                "verdict": got,
                "why": why,
                "expect": claim.expect,
                "as_expected": claim.expect is None or claim.expect == got,
                "figures": list(claim.figures),
            }
        )
    return rows


def markdown(rows: Sequence[dict[str, Any]], header: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        header,
        "",
        "| claim (the post) | setting | criterion (set before the run) | measured | control | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict_text = f"**{r['verdict']}**" + (f" ({r['why']})" if r["why"] else "")
        if not r["as_expected"]:
            verdict_text += f" — expected {r['expect']}"
        setting = ("*extra setting:* " if r["extra_setting"] else "") + r["setting"]
        figures = " ".join(f"[{Path(f).name}]({f})" for f in r["figures"])
        lines.append(
            "| "
            + " | ".join(
                cell(x)
                for x in (
                    f"{r['post']} `{r['id']}`",
                    f"{setting} {figures}".strip(),
                    r["criterion"],
                    r["shown"],
                    r["control_shown"],
                    verdict_text,
                )
            )
            + " |"
        )
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    lines += ["", "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
    return "\n".join(lines) + "\n"


def junit(rows: Sequence[dict[str, Any]], name: str) -> bytes:
    """One JUnit test case per claim: a failure where the verdict is not the expected one."""
    suite = ET.Element(
        "testsuite", name=name, tests=str(len(rows)), failures=str(sum(not r["as_expected"] for r in rows))
    )
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=name, name=r["id"])
        if not r["as_expected"]:
            failure = ET.SubElement(case, "failure", message=f"verdict {r['verdict']}, expected {r['expect']}")
            failure.text = f"{r['post']}\n{r['criterion']}: {r['shown']}\n{r['why']}".strip()
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
