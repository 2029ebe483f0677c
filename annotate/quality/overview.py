"""A collection at a glance (staff): how much judging is left, at what pace, and how agreement went.

Coverage counts people's standing grades per candidate up to the collection's k: a candidate with
k grades is covered, extra grades do not cover another one. The pace is people's grades per hour
over the last day (over the last week when the day had none); the ETA is what is left at that pace.
"""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from ..models import Candidate, Collection, Judgment, Query
from . import svg
from .selectors import trend


def overview(collection: Collection, *, now=None) -> dict:
    now = now or timezone.now()
    k = collection.overlap_k
    candidates = Candidate.objects.filter(collection=collection).count()
    people = Judgment.objects.standing().filter(collection=collection, annotator__isnull=False)
    per_candidate = people.order_by().values("candidate_id").annotate(n=Count("pk")).values_list("n", flat=True)
    given = sum(min(n, k) for n in per_candidate)
    covered = sum(1 for n in per_candidate if n >= k)
    needed = candidates * k
    left = max(needed - given, 0)
    day = people.filter(updated_at__gte=now - timedelta(days=1)).count()
    week = people.filter(updated_at__gte=now - timedelta(days=7)).count()
    per_hour, window = (day / 24.0, "the last 24 hours") if day else (week / (24.0 * 7), "the last 7 days")
    eta_hours = left / per_hour if per_hour and left else (0.0 if not left else None)
    points = trend(collection)
    return {
        "queries": Query.objects.filter(collection=collection).count(),
        "candidates": candidates, "k": k, "needed": needed, "given": given, "left": left, "covered": covered,
        "share": given / needed if needed else None,
        "per_hour": per_hour, "pace_window": window, "eta_hours": eta_hours,
        "active_today": people.filter(updated_at__gte=now - timedelta(days=1)).values("annotator_id").distinct().count(),
        "latest_alpha": points[-1]["alpha"] if points else None,
        "trend_svg": svg.trend_chart(
            [(f"{p['created_at']:%Y-%m-%d %H:%M} ({p['n_judgments']})", p["alpha"], p["low"], p["high"]) for p in points],
            title="Krippendorff's alpha (ordinal) over reports, with 95% intervals"),
    }
