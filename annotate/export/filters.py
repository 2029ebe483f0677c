"""Export parameters: parsed, checked and filled with defaults before anything is read or written.

Every parameter has a default, so `{}` is a valid request. Values may come as JSON (REST, admin,
retraining policy) or as strings (the download's query string, the command line): "0.5", "true".
A bad value raises ExportParamsError naming the parameter; an unknown parameter is refused too (a
typo must not silently export everything).

| parameter            | default    | meaning |
|----------------------|------------|---------|
| split                | "all"      | train / dev / test / all (Query.split) |
| method               | "model"    | label: the annotator model (annotate/quality/annotator_model.py), or median / mean / majority / adjudicated (aggregation.py) |
| priors               | "fallback" | imported labels: fallback (only without human grades) / always / never |
| prior_reliability    | 1.0        | reliability of an imported label, 0..1 |
| tau                  | 1.0        | evidence scale of the weight formula, > 0 |
| min_judgments        | 0          | drop pairs with fewer grades (adjudicated pairs are kept) |
| min_weight           | 0.0        | drop pairs with a lower weight, 0..1 |
| min_query_alpha      | null       | drop queries whose alpha in the latest agreement report is lower |
| guideline_version    | null       | only people's judgments made under this guideline version |
| since, until         | null       | only people's judgments last changed in [since, until] (ISO date or date-time) |
| include_gold         | true       | false: leave gold candidates out |
| include_simulated    | true       | false: leave simulated annotators' judgments out |
| only_with_positive   | false      | only queries with at least one candidate labelled >= positive_grade |
| positive_grade       | 2          | the grade from which a candidate counts as positive (1..3) |
| max_pairs_per_query  | 100        | pairwise: at most this many pairs per query |
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, fields

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from ..splits import SPLITS
from .aggregation import METHODS, PRIOR_MODES, AggregationOptions

FORMATS = ("listwise", "pointwise", "pairwise", "qrels", "flagembedding")
SPLIT_CHOICES = (*SPLITS, "all")


class ExportParamsError(ValueError):
    """A bad export parameter; the message names it."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ExportParams:
    split: str = "all"
    method: str = "model"
    priors: str = "fallback"
    prior_reliability: float = 1.0
    tau: float = 1.0
    min_judgments: int = 0
    min_weight: float = 0.0
    min_query_alpha: float | None = None
    guideline_version: str | None = None
    since: str | None = None
    until: str | None = None
    include_gold: bool = True
    include_simulated: bool = True
    only_with_positive: bool = False
    positive_grade: int = 2
    max_pairs_per_query: int = 100

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def aggregation(self) -> AggregationOptions:
        return AggregationOptions(method=self.method, priors=self.priors, prior_reliability=self.prior_reliability,
                                  tau=self.tau)

    @property
    def since_time(self) -> dt.datetime | None:
        return _moment(self.since, end=False) if self.since else None

    @property
    def until_time(self) -> dt.datetime | None:
        return _moment(self.until, end=True) if self.until else None


def check_format(value) -> str:
    if value not in FORMATS:
        raise ExportParamsError("format", _one_of(FORMATS, value))
    return value


def parse_params(raw: dict | None) -> ExportParams:
    """ExportParams from a dict of JSON values or strings; ExportParamsError names a bad one."""
    raw = dict(raw or {})
    known = {f.name for f in fields(ExportParams)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ExportParamsError(unknown[0], _("unknown export parameter (known: %(known)s)") % {
            "known": ", ".join(sorted(known))})
    values = {name: value for name, value in raw.items() if value is not None and value != ""}
    parsed = {}
    for name, value in values.items():
        parsed[name] = _PARSERS[name](name, value)
    params = ExportParams(**parsed)
    if params.since and params.until and params.since_time > params.until_time:
        raise ExportParamsError("since", _("%(since)s is after until=%(until)s") % {
            "since": params.since, "until": params.until})
    return params


def _one_of(options, value) -> str:
    return _("must be one of %(choices)s, got %(value)r") % {"choices": ", ".join(options), "value": value}


def _choice(options):
    def parse(name, value):
        if value not in options:
            raise ExportParamsError(name, _one_of(options, value))
        return value
    return parse


def _number(low: float | None = None, high: float | None = None, *, integer: bool = False, open_low: bool = False):
    def parse(name, value):
        if isinstance(value, bool):
            raise ExportParamsError(name, _("must be a number, got %(value)r") % {"value": value})
        try:
            number = (int(value) if integer and not isinstance(value, float) else float(value))
        except (TypeError, ValueError):
            reason = _("must be an integer, got %(value)r") if integer else _("must be a number, got %(value)r")
            raise ExportParamsError(name, reason % {"value": value}) from None
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise ExportParamsError(name, _("must be an integer, got %(value)r") % {"value": value})
        if not integer and not math.isfinite(number):
            raise ExportParamsError(name, _("must be a finite number, got %(value)r") % {"value": value})
        if low is not None and (number < low or (open_low and number == low)):
            reason = _("must be > %(low)s, got %(value)r") if open_low else _("must be >= %(low)s, got %(value)r")
            raise ExportParamsError(name, reason % {"low": low, "value": value})
        if high is not None and number > high:
            raise ExportParamsError(name, _("must be <= %(high)s, got %(value)r") % {"high": high, "value": value})
        return int(number) if integer else float(number)
    return parse


def _bool(name, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ExportParamsError(name, _("must be true or false, got %(value)r") % {"value": value})


def _text(name, value):
    if not isinstance(value, str) or len(value) > 32:
        raise ExportParamsError(name, _("must be a string of at most 32 characters, got %(value)r") % {"value": value})
    return value


def _when(name, value):
    if not isinstance(value, str) or _moment(value, end=False) is None:
        raise ExportParamsError(name, _("must be an ISO date (2024-05-01) or date-time, got %(value)r") % {
            "value": value})
    return value


def _moment(value: str, *, end: bool) -> dt.datetime | None:
    """A date-time from an ISO date or date-time; a bare date covers its whole day."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is None:
                return None
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.timezone.utc)
    return moment


_PARSERS = {
    "split": _choice(SPLIT_CHOICES),
    "method": _choice(METHODS),
    "priors": _choice(PRIOR_MODES),
    "prior_reliability": _number(0.0, 1.0),
    "tau": _number(0.0, 1000.0, open_low=True),
    "min_judgments": _number(0, 1000, integer=True),
    "min_weight": _number(0.0, 1.0),
    "min_query_alpha": _number(-1.0, 1.0),
    "guideline_version": _text,
    "since": _when,
    "until": _when,
    "include_gold": _bool,
    "include_simulated": _bool,
    "only_with_positive": _bool,
    "positive_grade": _number(1, 3, integer=True),
    "max_pairs_per_query": _number(1, 100_000, integer=True),
}
