"""A collection at a glance (staff): how much judging is left, at what pace, and how agreement went.

Coverage counts people's standing grades per candidate up to the collection's k: a candidate with
k grades is covered, extra grades do not cover another one. The pace is people's grades per hour
over the last day (over the last week when the day had none); the ETA is what is left at that pace.
"""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Least
from django.utils import timezone
from django.utils.translation import gettext

from ..models import Candidate, Collection, Judgment, Query
from .selectors import trend, trend_chart


def overview(collection: Collection, *, now=None) -> dict:
    now = now or timezone.now()
    k = collection.overlap_k
    candidates = Candidate.objects.filter(collection=collection).count()
    people = Judgment.objects.standing().filter(collection=collection, annotator__isnull=False)
    # One query each, in the database: per candidate its people's grades up to k, then summed (not
    # every candidate's count pulled into Python).
    coverage = (people.order_by().values("candidate_id").annotate(n=Count("pk"), capped=Least("n", Value(k)))
                .aggregate(given=Sum("capped"), covered=Count("candidate_id", filter=Q(n__gte=k))))
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    recent = people.aggregate(day=Count("pk", filter=Q(updated_at__gte=day)),
                              week=Count("pk", filter=Q(updated_at__gte=week)),
                              active_today=Count("annotator_id", distinct=True, filter=Q(updated_at__gte=day)))
    given, covered = coverage["given"] or 0, coverage["covered"] or 0
    needed = candidates * k
    left = max(needed - given, 0)
    per_hour, window = ((recent["day"] / 24.0, gettext("the last 24 hours")) if recent["day"]
                        else (recent["week"] / (24.0 * 7), gettext("the last 7 days")))
    eta_hours = left / per_hour if per_hour and left else (0.0 if not left else None)
    points = trend(collection)
    return {
        "queries": Query.objects.filter(collection=collection).count(),
        "candidates": candidates, "k": k, "needed": needed, "given": given, "left": left, "covered": covered,
        "share": given / needed if needed else None,
        "per_hour": per_hour, "pace_window": window, "eta_hours": eta_hours,
        "active_today": recent["active_today"],
        "latest_alpha": points[-1]["alpha"] if points else None,
        "trend_svg": trend_chart(points),
    }
