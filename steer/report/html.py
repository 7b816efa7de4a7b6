"""Self-contained HTML pages for run folders: `report.html` (every study) and `summary.html` (`make reproduce`).

A page is built from what a run folder already holds, never from a study's objects, so it works for every
study, including ones added later: `manifest.json` names the report JSON (its `reports` list), and the
report holds the spec, provenance, `summary`, `figures` and any lists of per-maze rows.

    from steer.report.html import write_report_html
    write_report_html(Path("outputs/demo"))          # -> outputs/demo/report.html

Pages open from the file system with no network: figures are inlined as base64 data URIs (each PNG once),
styles and the few lines of table-sorting script are inline. Everything read from the folder is untrusted
(a manifest can be edited): values are escaped by Jinja's autoescape, and file names go through
`steer.io.inside`, so a page never inlines or links a file outside its folder.

This module reads the folder, fills the templates and writes the pages; the summary blocks, tables and
figure captions a report page shows are made in steer/report/html_tables.py.

Over 400 lines on purpose: both pages (a run's report and a batch's summary) share the templates' environment,
the inlining of figures and the confinement of links.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from steer.analysis.claims import two_samples
from steer.analysis.metrics import METRICS
from steer.analysis.verdicts import SAMPLES
from steer.errors import SteerError, excerpt
from steer.io import atomic_write_bytes, inside
from steer.report.claims_text import (
    SANITY_NOTE,
    SANITY_TITLE,
    counts_text,
    findings,
    measured_text,
    multiplicity_lines,
    sanity_checks,
)
from steer.report.html_tables import (
    TABLE_TITLES,
    Figure,
    _column_title,
    _is_number,
    caption,
    label,
    make_table,
    num,
    summary_blocks,
)
from steer.report.render import LEGEND

REPORT_HTML = "report.html"
SUMMARY_HTML = "summary.html"
CLAIMS_CHART = "claims.png"  # a batch's claims chart beside its summary.html (and claims.svg, steer.batch.run)
TEMPLATES = Path(__file__).resolve().parent / "templates"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@cache
def environment() -> jinja2.Environment:
    """The template environment: templates beside this module, autoescape on for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the tests, not silently renders ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    env.filters["column_title"] = _column_title
    env.tests["realnumber"] = _is_number  # Jinja's own `number` test counts booleans as numbers
    env.globals["sort_script"] = (TEMPLATES / "sortable.js").read_text()
    env.globals["style"] = (TEMPLATES / "page.css").read_text()
    return env


# -- reading a run folder ------------------------------------------------------------------------------
def _dir_error(folder: Path, problem: str) -> SteerError:
    return SteerError(
        f"DIR: {excerpt(str(folder), 160)} {problem} Give a run folder that a steer command wrote (it holds "
        "manifest.json and the run's report, e.g. outputs/demo)."
    )


def _read_json(path: Path, folder: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _dir_error(folder, f"has no {what}.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _dir_error(folder, f"has a {what} that cannot be read ({getattr(e, 'strerror', None) or e}).") from None
    except ValueError as e:
        raise _dir_error(folder, f"has a {what} that is not valid JSON ({excerpt(str(e), 80)}).") from None


def read_run(folder: Path, manifest: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(manifest, report, report file name) of a finished run folder, or one SteerError naming DIR; `manifest`: the
    run's own, when the caller holds it (else it is read from the folder)."""
    folder = Path(folder)
    try:
        is_dir, exists = folder.is_dir(), folder.exists()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise _dir_error(folder, f"cannot be used as a folder name ({e.strerror or e}).") from None
    if not exists:
        raise _dir_error(folder, "does not exist.")
    if not is_dir:
        raise _dir_error(folder, "is a file, not a folder.")
    if manifest is None:
        manifest = _read_json(folder / "manifest.json", folder, "manifest.json")
    if not isinstance(manifest, dict):
        raise _dir_error(folder, "has a manifest.json that is not a steer manifest.")
    reports = manifest.get("reports")
    names = [r for r in reports if isinstance(r, str) and r.endswith(".json")] if isinstance(reports, list) else []
    if not names:
        status = manifest.get("status")
        raise _dir_error(
            folder,
            f"holds a run that has not finished (status {excerpt(status, 40)}), so there is no report to show yet. "
            "Run the same command again to finish it (finished cells are reused), then `steer report` it.",
        )
    name = names[0]
    path = inside(folder, name)
    if path is None:
        raise _dir_error(folder, f"has a manifest naming a report outside the folder ({excerpt(name, 60)}).")
    report = _read_json(path, folder, name)
    if not isinstance(report, dict):
        raise _dir_error(folder, f"has a {name} that is not a steer report.")
    return manifest, report, name


def data_uri(folder: Path, name: Any) -> str | None:
    """A PNG inside `folder` as a data URI; None when it is missing, outside the folder or not a PNG."""
    path = inside(folder, name)
    if path is None or not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# -- the report page --------------------------------------------------------------------------------------
def _cell_files(manifest: Mapping[str, Any]) -> dict[int, list[str]]:
    """seed -> the files its cell wrote, from the manifest (cells are named `seed-N`)."""
    cells = manifest.get("cells")
    out: dict[int, list[str]] = {}
    if not isinstance(cells, dict):
        return out
    planned = manifest.get("cells_planned")
    for name, rec in cells.items():
        if isinstance(planned, list) and name not in planned:  # kept for a larger run; not this run's
            continue
        m = re.fullmatch(r"seed-(\d+)", str(name))
        if m and isinstance(rec, dict) and isinstance(rec.get("files"), list):
            out[int(m.group(1))] = [f for f in rec["files"] if isinstance(f, str)]
    return out


def _json_files(folder: Path, manifest: Mapping[str, Any], report_name: str) -> list[str]:
    """The JSON files of the run: manifest, report, then each cell's, those present inside the folder."""
    names = ["manifest.json", report_name]
    for _, files in sorted(_cell_files(manifest).items()):  # by seed: the page must not depend on finishing order
        names += [f for f in files if f.endswith(".json")]
    return [n for n in dict.fromkeys(names) if (p := inside(folder, n)) is not None and p.is_file()]


def _provenance(report: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[tuple[str, Any]]:
    prov = report.get("provenance") if isinstance(report.get("provenance"), dict) else {}
    assert isinstance(prov, dict)
    ck = prov.get("checkpoint") if isinstance(prov.get("checkpoint"), dict) else {}
    assert isinstance(ck, dict)
    rows: list[tuple[str, Any]] = [
        ("checkpoint", ck.get("name")),
        ("checkpoint sha256", ck.get("sha256")),
        ("checkpoint file", ck.get("path")),
        ("trained in", ck.get("training_mode")),
        ("mode run in", prov.get("distribution_mode")),
        ("layer", prov.get("layer")),
    ]
    versions = prov.get("versions")
    if isinstance(versions, dict):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    inputs = prov.get("inputs")
    if isinstance(inputs, list):
        for item in inputs:
            if isinstance(item, dict):
                rows.append(("input file", f"{item.get('path')} (sha256 {item.get('sha256')})"))
        if not inputs:
            rows.append(("input files", "none besides the checkpoint"))
    rows += [
        ("git revision", manifest.get("git_revision")),
        ("started", manifest.get("started")),
        ("finished", manifest.get("finished")),
        ("status", manifest.get("status")),
        ("run fingerprint", manifest.get("fingerprint")),
    ]
    return rows


COLUMN_NOTES = {
    "n": "mazes where the quantity is defined (P(· | decision square) needs a maze with a decision square)",
    "mean": "mean over those mazes",
    "median": "median over those mazes",
    "q25": "25th percentile over those mazes",
    "q75": "75th percentile over those mazes",
    "mean_ci": "95% bootstrap interval of the mean",
    "median_ci": "95% bootstrap interval of the median",
    "ci_low": "lower end of the interval",
    "ci_high": "upper end of the interval",
    "wilcoxon_p": "Wilcoxon signed-rank p-value of the paired change (patched − original), on change rows",
}


def _sentence(text: str) -> str:
    return f"{text.rstrip('.')}." if text else ""


def _at_a_glance(report: Mapping[str, Any], manifest: Mapping[str, Any], spec: Any) -> list[tuple[str, Any]]:
    """The few facts a reader needs first: what ran, on what, with which vector, over how many mazes."""
    prov = report.get("provenance") if isinstance(report.get("provenance"), dict) else {}
    assert isinstance(prov, dict)
    ck = prov.get("checkpoint") if isinstance(prov.get("checkpoint"), dict) else {}
    assert isinstance(ck, dict)
    sha = ck.get("sha256")
    rows: list[tuple[str, Any]] = [
        ("command", f"steer {report.get('command') or manifest.get('command')}"),
        ("checkpoint", f"{ck.get('name')} (sha256 {sha[:12]}…)" if isinstance(sha, str) else ck.get("name")),
        ("mode", prov.get("distribution_mode")),
        ("layer", prov.get("layer")),
    ]
    vector = report.get("vector")
    if isinstance(vector, dict):
        rows.append(("vector", _vector_text(vector)))
    coeffs = report.get("coeffs")
    if isinstance(coeffs, list):
        rows.append(("coefficients", ", ".join(f"{c:g}" if _is_number(c) else str(c) for c in coeffs)))
    elif isinstance(vector, dict) and _is_number(vector.get("coeff")):
        rows.append(("coefficient", f"{vector['coeff']:g}"))
    mazes, skipped = report.get("mazes"), report.get("skipped")
    if isinstance(mazes, list):
        rows.append(
            (
                "mazes",
                f"{len(mazes)} done" + (f", {len(skipped)} skipped" if isinstance(skipped, list) and skipped else ""),
            )
        )
    if report.get("reused_cells"):
        rows.append(("resumed", f"{report['reused_cells']} cells reused from an earlier run of the same spec"))
    return rows


def _vector_text(vector: Mapping[str, Any]) -> str:
    """`cheese vector, each maze's own` / `top_right vector of seed 5` / `cheese vector from file v.safetensors`."""
    text = f"{vector.get('kind', '?')} vector"
    feature = vector.get("feature")
    if isinstance(feature, Mapping):  # a dictionary feature: which one, of which file, where
        at = feature.get("at")
        place = f"at {at}" if at is not None else f"at {len(feature.get('positions') or [])} map positions"
        return f"feature {feature.get('index')} of {feature.get('dictionary')} x {feature.get('scale')}, {place}"
    if vector.get("file"):
        return f"{text} from file {vector['file']}"
    if vector.get("source_seeds"):
        return f"{text}, mean over {len(vector['source_seeds'])} mazes"
    source = vector.get("source_seed")
    return f"{text} of seed {source}" if source is not None else f"{text}, each maze's own"


REPORT_KEYS_SHOWN_ELSEWHERE = {"command", "spec", "provenance", "summary", "figures", "skipped"}


def report_context(
    folder: Path, manifest: dict[str, Any], report: dict[str, Any], report_name: str, what: str = ""
) -> dict[str, Any]:
    """Everything the report template shows, from the folder's manifest and report; `what`: the study's help."""
    spec = report.get("spec", manifest.get("spec"))
    command = str(report.get("command") or manifest.get("command") or "run")
    cell_files = _cell_files(manifest)
    items = report.get("mazes") if isinstance(report.get("mazes"), list) else []
    assert isinstance(items, list)
    by_seed = {m["seed"]: m for m in items if isinstance(m, dict) and isinstance(m.get("seed"), int)}
    figures = report.get("figures") if isinstance(report.get("figures"), list) else []
    assert isinstance(figures, list)
    shown = [Figure(str(f), caption(str(f), by_seed), data_uri(folder, f)) for f in dict.fromkeys(figures)]
    per_maze = {f for files in cell_files.values() for f in files}
    tables = [
        make_table(key, TABLE_TITLES.get(key, label(key)), value, cell_files)
        for key, value in report.items()
        if key not in REPORT_KEYS_SHOWN_ELSEWHERE
        and isinstance(value, list)
        and value
        and all(isinstance(v, dict) for v in value)
    ]
    details = [
        (key, value)
        for key, value in report.items()
        if key not in REPORT_KEYS_SHOWN_ELSEWHERE and key not in {t.key for t in tables}
    ]
    skipped = report.get("skipped") if isinstance(report.get("skipped"), list) else []
    blocks, columns = summary_blocks(report.get("summary"))
    spec_name = spec.get("name") if isinstance(spec, dict) else None
    return {
        "title": f"steer {command}" + (f" · {spec_name}" if spec_name else ""),
        "command": command,
        "folder": str(folder),
        "spec_yaml": yaml.safe_dump(spec, sort_keys=False, allow_unicode=True) if spec is not None else "",
        "provenance": _provenance(report, manifest),
        "blocks": blocks,
        "columns": columns,
        # Study-level figures (charts, matrices) at full width; one figure per maze in a grid of smaller ones.
        "figures": [f for f in shown if f.name.endswith(".png") and f.name not in per_maze],
        "maze_figures": [f for f in shown if f.name.endswith(".png") and f.name in per_maze],
        "legend": LEGEND,
        "tables": tables,
        "skipped": make_table("skipped", "Skipped", skipped, {}) if skipped else None,
        "details": details,
        "json_files": _json_files(folder, manifest, report_name),
        "report_name": report_name,
        "metric_labels": [(name, m.label) for name, m in METRICS.items()],
        "what": _sentence(what),
        "at_a_glance": _at_a_glance(report, manifest, spec),
        "column_notes": [(c, COLUMN_NOTES.get(c, "as the report gives it")) for c in columns],
    }


def _write(path: Path, text: str) -> Path:
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except SteerError as e:  # the writer names --out; here the folder came as DIR
        raise SteerError(str(e).replace("--out:", "DIR:", 1)) from None
    return path


def write_report_html(folder: Path, what: str = "", manifest: dict[str, Any] | None = None) -> Path:
    """Write `report.html` into a finished run folder from its manifest and report JSON; returns its path.

    `what` is the study's one-line help, the page's first sentence; the caller looks it up (this layer sits
    below the study registry). `manifest`: the one the run just wrote, as the runner holds it (cells with their
    files only), so a run of many mazes does not parse its whole manifest again."""
    folder = Path(folder)
    manifest, report, name = read_run(folder, manifest)
    context = report_context(folder, manifest, report, name, what)
    html = environment().get_template("report.html.j2").render(context)
    return _write(folder / REPORT_HTML, html)


# -- a batch's claims page (make reproduce) -------------------------------------------------------------
VERDICT_CLASSES = {
    "holds": "holds",
    "fails": "fails",
    "does not replicate": "fails",  # as prominent as a failure
    "inconclusive": "unsure",
    "underpowered": "unsure",
    "vacuous": "unsure",
}


@dataclass
class FigureLink:
    href: str  # relative to the summary page
    uri: str | None  # the PNG inlined; None when missing or outside the folder
    report: str | None  # the experiment's report.html, when it has one


def _figure_link(out: Path, href: Any) -> FigureLink:
    href = str(href)
    page = f"{href.split('/', 1)[0]}/{REPORT_HTML}"
    path = inside(out, page)
    return FigureLink(href, data_uri(out, href), page if path is not None and path.is_file() else None)


def write_summary_html(
    out: Path, rows: Sequence[Mapping[str, Any]], batch: str, checkpoint: Mapping[str, Any], sealed: str = ""
) -> Path:
    """`summary.html` beside a batch's `summary.md`: the claims (findings, then the sanity checks), verdicts and
    figures (inlined), each experiment's report linked. `rows` are `steer.analysis.claims.evaluate`'s;
    `checkpoint` has name, sha256 and the mode run in; `sealed` says whether the criteria were sealed before the
    replication sample (steer.analysis.seal.seal_text). The claims chart (`claims.png`), when the folder has it,
    heads the page."""
    out = Path(out)

    def shown(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **row,
            "verdict_class": VERDICT_CLASSES.get(str(row.get("verdict")), ""),
            "measured_text": measured_text(dict(row)),
            **{
                name: {
                    **row[name],
                    "measured_text": measured_text(dict(row[name])),
                    "verdict_class": VERDICT_CLASSES.get(str(row[name].get("verdict")), ""),
                }
                for name in SAMPLES
                if name in row
            },
            "figure_links": [_figure_link(out, f) for f in row.get("figures") or []],
        }

    reports = sorted(p.parent.name for p in out.glob(f"*/{REPORT_HTML}"))
    chart = data_uri(out, CLAIMS_CHART)  # drawn beside this page by the batch (steer.report.claims_chart)
    svg = Path(CLAIMS_CHART).with_suffix(".svg").name
    html = (
        environment()
        .get_template("summary.html.j2")
        .render(
            title=f"{batch}: claims and verdicts",
            checkpoint=checkpoint,
            groups=[
                ("Findings", "", [shown(r) for r in findings(rows)]),
                (SANITY_TITLE, SANITY_NOTE, [shown(r) for r in sanity_checks(rows)]),
            ],
            counts=counts_text(rows),
            sealed=sealed,
            two_samples=two_samples(list(rows)),
            multiplicity=multiplicity_lines(list(rows)),
            reports=reports,
            legend=LEGEND,
            chart=chart,
            chart_name=CLAIMS_CHART,
            chart_svg=svg if (out / svg).is_file() else None,
        )
    )
    return _write(out / SUMMARY_HTML, html)
