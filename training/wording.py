"""What a training run recorded, said on the pages in the viewer's language.

A run's metrics keep their sentences in English (the gate's ``reason``, the candidates' notes, where
dev came from): the API, the CLI and the tests read them as stored. The pages say them again at
display time, from the decision's figures or from the sentence's own parts. A rewording is shown
only when, rendered in English, it says exactly what was stored; otherwise (a run recorded before a
figure existed, a sentence this module does not know) the stored sentence is shown as it is.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django.utils import translation
from django.utils.translation import gettext, gettext_noop, pgettext, pgettext_lazy

from .gate import FAILS, NOT_ENOUGH, OVERRIDE, PASSES, one_sided_level

# Sentences other modules store whole in a run's metrics (English, from these very msgids).
STALE_FIGURES = gettext_noop("not promoted: another model was promoted while this run trained; its figures are stale")
STAFF_OVERRIDE = gettext_noop("promoted by staff override: %(reason)s")  # training.override
SNAPSHOT_DEV = gettext_noop("the snapshot's %(n)s dev queries")  # training.services, dev_source
HELD_OUT_DEV = gettext_noop("%(n)s of the snapshot's %(train)s train queries held out (no dev split)")

# Candidates, references, model kinds and loss-curve stages, by the name runs record. English shows
# the recorded name itself: the pages and their tests match on it.
_MODEL_NAMES = {
    "zero-shot": pgettext_lazy("model", "zero-shot"),
    "bi-encoder": pgettext_lazy("model", "bi-encoder"),
    "cross-encoder": pgettext_lazy("model", "cross-encoder"),
    "cross-encoder (distil)": pgettext_lazy("model", "cross-encoder (distil)"),
    "fusion": pgettext_lazy("model", "fusion"),
    "zero-shot base": pgettext_lazy("model", "zero-shot base"),
    "fine-tuned": pgettext_lazy("model", "fine-tuned"),
    "bm25": pgettext_lazy("model", "bm25"),
    "promoted": pgettext_lazy("model", "promoted"),
}
_BRANCHES = {
    NOT_ENOUGH: pgettext_lazy("gate branch", "not enough dev queries"),
    FAILS: pgettext_lazy("gate branch", "fails"),
    PASSES: pgettext_lazy("gate branch", "passes"),
    OVERRIDE: pgettext_lazy("gate branch", "override"),
}
_STATUSES = {
    "pending": pgettext_lazy("run status", "pending"),
    "running": pgettext_lazy("run status", "running"),
    "done": pgettext_lazy("run status", "done"),
    "failed": pgettext_lazy("run status", "failed"),
    "cancelled": pgettext_lazy("run status", "cancelled"),
    "manual": pgettext_lazy("run trigger", "manual"),
    "schedule": pgettext_lazy("run trigger", "schedule"),
}


def model_name(name) -> str:
    """A candidate's, reference's or model kind's name as the viewer reads it (unknown names as they are)."""
    return str(_MODEL_NAMES.get(name, name if name is not None else "?"))


def branch_name(branch: str) -> str:
    return str(_BRANCHES.get(branch, branch))


def status_name(status: str) -> str:
    """A run's status or trigger as the viewer reads it."""
    return str(_STATUSES.get(status, status))


# --- the gate's decision -------------------------------------------------------------------------
def describe_decision(decision: dict) -> str:
    """The gate's sentence (GateDecision.reason) in the viewer's language, from the decision's JSON
    (GateDecision.as_json()); the stored sentence when its figures do not say it."""
    return _in_viewers_language(decision.get("reason") or "", [lambda: _gate_sentence(decision)])


def run_decision(run) -> str:
    """A run's decision in one sentence: the gate's (or the override's), or one written from an
    older run's figures, or why there is none yet."""
    from .models import TrainingRun

    metrics = run.metrics or {}
    decision = metrics.get("decision")
    if not decision:
        said = (gettext("no decision yet: the run is %(status)s") if run.status in TrainingRun.ACTIVE
                else gettext("no decision: the run is %(status)s"))
        return said % {"status": status_name(run.status)}
    if not decision.get("reason"):
        return _older_decision(decision)
    gate = _chosen_gate(decision, metrics.get("candidates"))
    return _in_viewers_language(decision["reason"], [
        lambda: gettext(STAFF_OVERRIDE) % {"reason": decision["override_reason"]},
        lambda: gettext(STALE_FIGURES),
        lambda: _gate_sentence(gate),
    ])


def gate_said(run) -> str:
    """What the gate had said before staff overrode it (the decision's ``gate_reason``)."""
    metrics = run.metrics or {}
    decision = metrics.get("decision") or {}
    gate = _chosen_gate(decision, metrics.get("candidates"))
    return _in_viewers_language(decision.get("gate_reason") or "",
                                [lambda: gettext(STALE_FIGURES), lambda: _gate_sentence(gate)])


def _chosen_gate(decision: dict, candidates) -> dict:
    """The gate JSON of the candidate the run chose ({} when the run does not name one)."""
    chosen = decision.get("candidate")
    return next((row["gate"] for row in candidates or []
                 if isinstance(row, dict) and row.get("name") == chosen and row.get("gate")), {})


def _gate_sentence(decision: dict) -> str:
    """GateDecision.reason, worded in the active language (training.gate.decide_promotion writes
    the English one; the tests hold the two together)."""
    branch = decision["branch"]
    counts = {"n": decision["dev_queries"], "least": decision["min_dev_queries"]}
    if branch == NOT_ENOUGH:
        return gettext("not enough dev queries (%(n)d): the gate needs at least %(least)d, "
                       "so nothing is promoted") % counts
    if branch == OVERRIDE:
        return gettext("not enough dev queries (%(n)d): the gate needs at least %(least)d; "
                       "promoted by staff override: %(reason)s") % {**counts, "reason": decision["override_reason"]}
    level, margin = one_sided_level(decision["alpha"]), _signed(decision["margin"])
    comparisons = decision["comparisons"]
    if branch == FAILS:
        against = pgettext("between references", "; ").join(
            gettext("%(reference)s (gain %(gain)s, %(level)s lower bound %(bound)s)") % {
                **_gain(comparison), "level": level}
            for comparison in comparisons if not comparison["passes"])
        sentence = pgettext("gate decision", "not promoted: fails against %(against)s, not above the margin "
                            "%(margin)s on %(n)d dev queries") % {"against": against, "margin": margin, **counts}
    elif branch == PASSES:
        gains = pgettext("between references", ", ").join(
            gettext("%(reference)s %(gain)s (bound %(bound)s)") % _gain(comparison) for comparison in comparisons)
        sentence = gettext("promoted: the %(level)s lower bound of the dev NDCG@10 gain is above the margin "
                           "%(margin)s against every reference on %(n)d dev queries: %(gains)s") % {
            "level": level, "margin": margin, "gains": gains, **counts}
    else:
        raise KeyError(branch)
    if decision.get("override_not_applied"):
        sentence = gettext("%(sentence)s (override not applied: dev is large enough to test)") % {
            "sentence": sentence}
    return sentence


def _gain(comparison: dict) -> dict:
    return {"reference": model_name(comparison["reference"]), "gain": _signed(comparison["mean_difference"]),
            "bound": _signed(comparison["interval"][0])}


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _older_decision(decision: dict) -> str:
    """The decision of a run recorded before the gate (a margin over one reference)."""
    new, baseline = decision.get("new_ndcg@10"), decision.get("baseline_ndcg@10")
    if baseline is None:
        return (gettext("promoted") if decision.get("promoted")
                else gettext("not promoted: another model was promoted while this run was evaluated"))
    against = decision.get("against")
    figures = {"new": _figure(new), "against": model_name(against) if against else gettext("the reference"),
               "baseline": _figure(baseline), "margin": f"{decision.get('margin') or 0.0:.4f}"}
    if decision.get("promoted"):
        return gettext("promoted: dev NDCG@10 %(new)s against %(against)s %(baseline)s + margin %(margin)s") % figures
    return gettext("not promoted: dev NDCG@10 %(new)s against %(against)s %(baseline)s + margin %(margin)s") % figures


def _figure(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def _in_viewers_language(stored: str, renderings: Iterable[Callable[[], str]]) -> str:
    """The first rendering that, in English, says exactly ``stored``, rendered in the active
    language; ``stored`` itself when none does (a missing figure raises, and is not trusted)."""
    for render in renderings:
        try:
            with translation.override("en"):
                if render() != stored:
                    continue
            return render()
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            continue
    return stored


# --- notes stored as English phrases (training.candidates, training.services) ---------------------
_WORDS = r"[^,()]+"
_FITTED_ON = (
    (re.compile(r"(?P<n>\d+) train queries"), gettext_noop("%(n)s train queries")),
    (re.compile(r"(?P<n>\d+) dev queries, cross-fitted in (?P<folds>\d+) folds"),
     gettext_noop("%(n)s dev queries, cross-fitted in %(folds)s folds")),
)
_NOTES = (
    (re.compile(r"the base model as it is"), gettext_noop("the base model as it is")),
    (re.compile(r"fine-tuned as a bi-encoder on the labels"), gettext_noop("fine-tuned as a bi-encoder on the labels")),
    (re.compile(r"fine-tuned on the labels"), gettext_noop("fine-tuned on the labels")),
    (re.compile(rf"distilled from (?P<kind>\S+) (?P<teacher>{_WORDS}), then fine-tuned on the labels"),
     gettext_noop("distilled from %(kind)s %(teacher)s, then fine-tuned on the labels")),
    (re.compile(rf"(?P<inner>{_WORDS}) mixed with BM25 at weight (?P<weight>\S+) \(fitted on (?P<fitted>.+)\)"),
     gettext_noop("%(inner)s mixed with BM25 at weight %(weight)s (fitted on %(fitted)s)")),
)
_DEV_SOURCES = (
    (re.compile(r"the snapshot's (?P<n>\d+) dev queries"), SNAPSHOT_DEV),
    (re.compile(r"(?P<n>\d+) of the snapshot's (?P<train>\d+) train queries held out \(no dev split\)"), HELD_OUT_DEV),
)
# Parts of a phrase that are names or phrases themselves.
_PART_WORDING = {"kind": model_name, "inner": model_name, "fitted": lambda text: _phrase(text, _FITTED_ON)}


def candidate_note(note: str) -> str:
    """A candidate's note (how it was made) in the viewer's language."""
    return _phrase(note, _NOTES)


def dev_source(text: str) -> str:
    """Where a run's dev queries came from, in the viewer's language."""
    return _phrase(text, _DEV_SOURCES)


def _phrase(text: str, phrases) -> str:
    for pattern, msgid in phrases:
        match = pattern.fullmatch(text or "")
        if match:
            parts = {name: _PART_WORDING.get(name, str)(value) for name, value in match.groupdict().items()}
            return gettext(msgid) % parts
    return text
