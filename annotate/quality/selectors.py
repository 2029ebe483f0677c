"""Reads of the quality stage: the latest report, the trend over reports, chart inputs, the grade count."""
from __future__ import annotations

from django.utils.safestring import SafeString
from django.utils.translation import gettext

from ..agreement.annotators import FLAG_TEXT
from ..grades import GRADES
from ..judging.false_negatives import false_negative_lane
from ..models import AgreementReport, Collection, Judgment
from . import svg

TREND_REPORTS = 60


def people_grade_count(collection: Collection) -> int:
    """People's standing grades in the collection: what a report's `n_judgments` is compared with."""
    return Judgment.objects.filter(collection=collection).people_grades().count()


def trend(collection: Collection, limit: int = TREND_REPORTS) -> list[dict]:
    """Ordinal alpha with its interval over the collection's last reports, oldest first."""
    rows = (AgreementReport.objects.filter(collection=collection).whole_collection().newest_first()
            .values_list("created_at", "n_judgments", "overall__krippendorff_alpha_ordinal",
                         "overall__alpha_ordinal_ci95")[:limit])
    points = []
    for created_at, n_judgments, alpha, interval in reversed(list(rows)):
        low, high = (interval if isinstance(interval, list) and len(interval) == 2 else (None, None))
        points.append({"created_at": created_at, "n_judgments": n_judgments, "alpha": alpha, "low": low, "high": high})
    return points


def trend_chart(points: list[dict]) -> SafeString:
    """The trend of `points` (trend()) drawn, each point labelled with its date and grade count."""
    return svg.trend_chart(
        [(f"{p['created_at']:%Y-%m-%d %H:%M} ({p['n_judgments']})", p["alpha"], p["low"], p["high"]) for p in points],
        title=gettext("Krippendorff's alpha (ordinal) over reports, with %(level)d%% intervals") % {"level": 95})


def dashboard(collection: Collection) -> dict:
    """Everything the dashboard page shows, with its charts drawn."""
    report = AgreementReport.objects.latest_for(collection)
    points = trend(collection)
    context = {
        "report": report,
        "trend_svg": trend_chart(points),
        "n_reports": len(points),
        "false_negative_lane": false_negative_lane(collection),
    }
    if report is None:
        return context
    overall = report.overall or {}
    annotators = sorted(report.per_annotator or [], key=lambda a: a.get("username", ""))
    for entry in annotators:
        entry["flag_text"] = [FLAG_TEXT.get(flag, flag) for flag in entry.get("flags", [])]
    labels = [a["username"] for a in annotators]
    position = {a["annotator_id"]: i for i, a in enumerate(annotators)}
    kappas, shared = {}, {}
    for pair in report.per_pair or []:
        a, b = position.get(pair["annotator_a_id"]), position.get(pair["annotator_b_id"])
        if a is not None and b is not None:
            kappas[(a, b)] = pair.get("kappa_quadratic")
            shared[(a, b)] = pair.get("n_items")
    context.update({
        "overall": overall,
        "figures": _figures(overall),
        "annotators": annotators,
        "queries": report.per_query or [],
        "query_counts": overall.get("queries", {}),
        "min_pair_items": svg.MIN_PAIR_ITEMS,
        "heatmap_svg": svg.heatmap(labels, kappas, counts=shared,
                                   title=gettext("Cohen's kappa (quadratic) per annotator pair, n = shared items")),
        "grades_svg": svg.grade_bars([(a["username"], a.get("grade_counts", [0] * len(GRADES))) for a in annotators],
                                     title=gettext("Grade distribution per annotator")),
    })
    return context


def _figures(overall: dict) -> list[dict]:
    """The headline figures with their intervals and what they rest on."""
    support = overall.get("support", {})
    rows = [
        (gettext("Krippendorff's alpha (ordinal)"), "krippendorff_alpha_ordinal", "alpha_ordinal_ci95", "krippendorff_alpha"),
        (gettext("Krippendorff's alpha (interval)"), "krippendorff_alpha_interval", "alpha_interval_ci95",
         "krippendorff_alpha"),
        (gettext("Krippendorff's alpha (nominal)"), "krippendorff_alpha_nominal", "alpha_nominal_ci95", "krippendorff_alpha"),
        (gettext("Fleiss' kappa"), "fleiss_kappa", None, "fleiss_kappa"),
        (gettext("Cohen's kappa, quadratic (mean over pairs)"), "cohen_kappa_quadratic_mean", None, "cohen_kappa"),
        (gettext("Percent agreement"), "percent_agreement", None, "percent_agreement"),
        (gettext("Within-one agreement"), "within_one_agreement", None, "percent_agreement"),
    ]
    figures = []
    for label, key, interval_key, support_key in rows:
        interval = overall.get(interval_key) if interval_key else None
        basis = support.get(support_key) or {}
        figures.append({"label": label, "key": key, "value": overall.get(key), "interval": interval,
                        "n_items": basis.get("n_items"), "n_judgments": basis.get("n_judgments"),
                        "undefined": _in_readers_words((overall.get("undefined") or {}).get(key))})
    return figures


def _in_readers_words(reason: str | None) -> str | None:
    """Why a figure is undefined: the report keeps the English reason (annotate/agreement marks
    each for translation), the page says it in the reader's language."""
    return gettext(reason) if reason else reason
