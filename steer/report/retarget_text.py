"""`steer retarget`'s console lines: per condition the mean P(reach target) with its interval over mazes, the
share of targets at half the cheese-moved P, the distance claim's Spearmans, the resampling test's mean TV, and
the intervention against each other condition; each with n and the mazes left out, counted by reason."""

from __future__ import annotations

from typing import Any

from steer.report.retarget_figs import LABELS


def _excluded(d: dict[str, Any]) -> str:
    """ ", k excluded (why: count; ...)" for a console line, or nothing where no maze was left out."""
    if not d.get("excluded"):
        return ""
    return f", {d['excluded']} excluded (" + "; ".join(f"{why}: {k}" for why, k in d["why_excluded"].items()) + ")"


def summary_lines(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = [f"channels {report['channels']} = {report['value']:g} at {report['layer']}; {s['mazes']} mazes"]
    if "feature" in report:
        f, scale = report["feature"], report["feature"]["natural_scale"]
        multiple = scale["value_multiple_of_max"]
        lines.append(
            f"feature {f['index']} of {f['dictionary']} clamped to {f['value']:g}"
            + (f" (x {multiple:.3g} its mean natural max, {scale['max']:.3g})" if multiple is not None else "")
        )
    for name in s["conditions"]:
        d = s[name]["p_reach"]
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        lines.append(
            f"  mean P(reach target) {LABELS[name]}: {d['mean']:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f}, "
            f"n {d['n']}{_excluded(d)})"
        )
    for key, text in (
        ("share_half_of_cheese_moved", "share of targets at >= half the cheese-moved P"),
        ("spearman_path_distance", "Spearman rho of P(reach) with distance from the top-right path"),
        ("spearman_path_distance_gain", "Spearman rho of the gain over none with distance from the top-right path"),
    ):
        if key not in s:
            continue
        d = s[key]
        counts = (f", {d['flat']} flat as 0" if "flat" in d else "") + _excluded(d)
        if not d["n"]:  # every maze left out: say so rather than drop the line
            lines.append(f"  {text}: no maze (n 0{counts})")
            continue
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        lines.append(f"  {text}: {d['mean']:.3f} ({ci[0]:.3f} to {ci[1]:.3f}, n {d['n']}{counts})")
    for key, d in s.get("resampling", {}).items():
        if key.startswith("cheese_minus"):
            continue
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        if d["n"]:
            what = key.replace("_", " ")
            lines.append(
                f"  resampling, mean TV, {what}: {d['mean']:.4f} ({ci[0]:.4f} to {ci[1]:.4f}, n {d['n']}{_excluded(d)})"
            )
    for other, d in s["intervention_minus"].items():
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        p = d["wilcoxon_p"]
        lines.append(
            f"  intervention - {other}: {d['mean']:+.3f} ({ci[0]:+.3f} to {ci[1]:+.3f}, n {d['n']}{_excluded(d)}), "
            "Wilcoxon p " + ("n/a" if p is None else f"{p:.2g}")
        )
    for other, d in s.get("feature_minus", {}).items():
        ci = d["mean_ci"] or [d["mean"], d["mean"]]
        p = d["wilcoxon_p"]
        lines.append(
            f"  feature - {other}: {d['mean']:+.3f} ({ci[0]:+.3f} to {ci[1]:+.3f}, n {d['n']}{_excluded(d)}), "
            "Wilcoxon p " + ("n/a" if p is None else f"{p:.2g}")
        )
    return lines
