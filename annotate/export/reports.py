"""What the export takes from the latest AgreementReport: annotator reliabilities, per-query alpha.

The report is the collection's latest whole-collection one (`AgreementReport.objects.latest_for`),
written by the quality stage (annotate/quality/report.py). The export reads it defensively:

- `per_annotator`: a list of objects. The annotator is named by `annotator_id` (user pk) or
  `annotator` (user pk or username); the reliability is the first of `reliability`,
  `consensus_agreement`, `agreement_with_consensus` that is a number, clamped to [0, 1]. An annotator
  missing from the report, an entry without a usable reliability, or no report at all means
  reliability 1.0: with no evidence against an annotator the export trusts them fully, so a fresh
  collection exports with weights from the number and spread of grades alone.
- `per_query`: a list of objects naming the query by `query_id` (pk, an integer; or its external
  id, a string), `external_id` or `query` (external id), with the alpha as the first number among
  `alpha`, `alpha_ordinal`, `krippendorff_alpha_ordinal`. The report lists the queries below the
  collection's adjudication threshold, so a query that is not listed (or has no alpha) is kept by
  `min_query_alpha`; a listed query is dropped when its alpha is below it. With no report at all
  the filter keeps every query.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model

from ..models import AgreementReport

RELIABILITY_KEYS = ("reliability", "consensus_agreement", "agreement_with_consensus")
ALPHA_KEYS = ("alpha", "alpha_ordinal", "krippendorff_alpha_ordinal")


def _number(entry: dict, keys) -> float | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def annotator_reliabilities(report: AgreementReport | None) -> dict[int, float]:
    """user pk -> reliability in [0, 1] for the annotators the report rates (others: 1.0)."""
    if report is None or not isinstance(report.per_annotator, list):
        return {}
    by_name: dict[str, float] = {}
    result: dict[int, float] = {}
    for entry in report.per_annotator:
        if not isinstance(entry, dict):
            continue
        reliability = _number(entry, RELIABILITY_KEYS)
        if reliability is None:
            continue
        reliability = min(1.0, max(0.0, reliability))
        who = entry.get("annotator_id", entry.get("annotator"))
        if isinstance(who, int) and not isinstance(who, bool):
            result[who] = reliability
        elif isinstance(who, str):
            by_name[who] = reliability
    if by_name:
        for pk, username in get_user_model().objects.filter(username__in=by_name).values_list("pk", "username"):
            result.setdefault(pk, by_name[username])
    return result


def low_alpha_queries(report: AgreementReport | None, minimum: float | None) -> tuple[set[int], set[str]]:
    """(query pks, query external ids) whose reported alpha is below `minimum`."""
    pks: set[int] = set()
    external_ids: set[str] = set()
    if minimum is None or report is None or not isinstance(report.per_query, list):
        return pks, external_ids
    for entry in report.per_query:
        if not isinstance(entry, dict):
            continue
        alpha = _number(entry, ALPHA_KEYS)
        if alpha is None or alpha >= minimum:
            continue
        query = entry.get("query_id", entry.get("external_id", entry.get("query")))
        if isinstance(query, int) and not isinstance(query, bool):
            pks.add(query)
        elif isinstance(query, str):
            external_ids.add(query)
    return pks, external_ids
