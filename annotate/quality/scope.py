"""Which judgments an agreement figure is computed over: a collection, or a subset of it.

    scope = AgreementScope.parse(query="q7", annotators="ann1,ann2", since="2026-01-01",
                                 until="2026-01-31", guideline_version="v2")
    judgments = scope.apply(collection, Judgment.objects.filter(collection=collection).people_grades())

- `query`: one query (its external id): the candidates of that query only.
- `annotators`: an annotator pair (two usernames): only their judgments, so alpha and kappa are
  those of the two of them on the items both (or either) judged.
- `since` / `until`: when the standing grade was given (the judgment's `updated_at`, as the export
  filters it), both ends included; a bare date means the whole day.
- `guideline_version`: judgments made under that guideline version.

Every problem is a ScopeError naming the filter and the value.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _


class ScopeError(ValueError):
    """A subset filter that cannot be applied; the message names it."""


@dataclass(frozen=True)
class AgreementScope:
    query: str | None = None
    annotators: tuple[str, str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    guideline_version: str | None = None

    @classmethod
    def parse(cls, *, query=None, annotators=None, since=None, until=None, guideline_version=None) -> "AgreementScope":
        pair = None
        if annotators:
            names = tuple(name.strip() for name in (annotators.split(",") if isinstance(annotators, str) else annotators))
            if len(names) != 2 or not all(names) or names[0] == names[1]:
                raise ScopeError(_("annotators %(value)s: give two different usernames, e.g. ann1,ann2")
                                 % {"value": repr(annotators)})
            pair = names
        start = _moment(since, "since", end_of_day=False)
        end = _moment(until, "until", end_of_day=True)
        if start and end and start > end:
            raise ScopeError(_("since %(since)s is after until %(until)s") % {"since": since, "until": until})
        return cls(query=query or None, annotators=pair, since=start, until=end,
                   guideline_version=guideline_version or None)

    @property
    def is_everything(self) -> bool:
        return self == AgreementScope()

    def apply(self, collection, judgments):
        """`judgments` (a Judgment queryset of the collection) narrowed to this scope."""
        if self.query is not None:
            query = collection.queries.filter(external_id=self.query).values_list("pk", flat=True).first()
            if query is None:
                raise ScopeError(_("query %(query)s is not in collection %(collection)s")
                                 % {"query": repr(self.query), "collection": collection.slug})
            judgments = judgments.filter(candidate__query_id=query)
        if self.annotators is not None:
            users = dict(get_user_model().objects.filter(username__in=self.annotators).values_list("username", "pk"))
            missing = [name for name in self.annotators if name not in users]
            if missing:
                raise ScopeError(_("annotator %(name)s does not exist") % {"name": repr(missing[0])})
            judgments = judgments.filter(annotator_id__in=list(users.values()))
        if self.since is not None:
            judgments = judgments.filter(updated_at__gte=self.since)
        if self.until is not None:
            judgments = judgments.filter(updated_at__lte=self.until)
        if self.guideline_version is not None:
            judgments = judgments.filter(guideline_version=self.guideline_version)
        return judgments

    def as_json(self) -> dict:
        data = {
            "query": self.query,
            "annotators": list(self.annotators) if self.annotators else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "guideline_version": self.guideline_version,
        }
        return {key: value for key, value in data.items() if value is not None}


def _moment(value, name: str, *, end_of_day: bool) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = _day(value, end_of_day)
    else:
        text = str(value).strip()
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text) if len(text) == 10 else None
            if day is None:
                raise ScopeError(_("%(field)s %(value)s is not a date (YYYY-MM-DD) or an ISO date-time")
                                 % {"field": name, "value": repr(value)})
            moment = _day(day, end_of_day)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _day(day: date, end_of_day: bool) -> datetime:
    start = datetime.combine(day, time.min)
    return start + timedelta(days=1, microseconds=-1) if end_of_day else start
