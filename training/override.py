"""Staff override of the promotion gate: promote the model of a finished run that the gate did not
promote, and keep who did it, when and why beside the gate's own decision.

The gate refuses to promote on a dev set too small to test (or a candidate that fails); staff may
know better -- a new collection whose first labels already show the model is right -- but that
choice must stay on the record: the run's decision becomes branch "override" with the reason, the
user and the time, and the gate's sentence is kept as ``gate_reason``. Callers check that the user
is staff (annotate/access.py); this module only decides whether the run can be overridden.
"""
from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .gate import OVERRIDE
from .models import ModelVersion, TrainingRun
from .registry import promote
from .services import send_miner_distillation
from .wording import STAFF_OVERRIDE, status_name

MAX_REASON_LENGTH = 500


class OverrideRefused(ValueError):
    """The override cannot be applied; the message names the problem."""


class OverrideReasonError(OverrideRefused):
    """The reason is missing, blank or too long (the caller's input: HTTP 400)."""


class OverrideConflict(OverrideRefused):
    """The run is not in a state that can be overridden: not finished, already promoted, or
    without a trained model (the run's state, not the input: HTTP 409)."""


def checked_reason(reason) -> str:
    """The reason stripped, or OverrideReasonError naming what is wrong with it."""
    if not isinstance(reason, str):
        raise OverrideReasonError(_("reason must be text, got %(type)s") % {"type": type(reason).__name__})
    reason = reason.strip()
    if not reason:
        raise OverrideReasonError(_("reason is required: say in one sentence why this model should serve "
                                    "although the gate did not promote it"))
    if len(reason) > MAX_REASON_LENGTH:
        raise OverrideReasonError(_("reason is %(length)d characters long; at most %(limit)d")
                                  % {"length": len(reason), "limit": MAX_REASON_LENGTH})
    return reason


@transaction.atomic
def override_promotion(*, run: TrainingRun, reason: str, user) -> TrainingRun:
    """Promote ``run``'s ModelVersion although the gate did not, recording ``reason`` and ``user``.

    Only a finished (done) run that promoted nothing and has a model version can be overridden;
    a second override of the same run is refused (OverrideConflict), so is a blank reason
    (OverrideReasonError). Returns the run as stored after the override.
    """
    reason = checked_reason(reason)
    # Lock the run: two staff pressing "Promote anyway" at once promote once; the second waits
    # here and then finds the run promoted.
    locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
    _check_overridable(locked)
    version = ModelVersion.objects.filter(run=locked).first()
    if version is None:
        raise OverrideConflict(_("training run %(id)s has no trained model to promote") % {"id": locked.pk})
    promote(version=version)
    transaction.on_commit(lambda: send_miner_distillation(version.pk))

    metrics = dict(locked.metrics or {})
    decision = dict(metrics.get("decision") or {})
    metrics["winner"] = decision.get("candidate") or best_candidate(metrics.get("candidates"))
    decision.update({
        "promoted": True, "branch": OVERRIDE, "gate_branch": decision.get("branch"),
        "gate_reason": decision.get("reason"), "override_reason": reason,
        "overridden_by": user.get_username() if user is not None else None,
        "overridden_at": timezone.now().isoformat(),
        "reason": STAFF_OVERRIDE % {"reason": reason},  # stored in English; the pages word it again
    })
    metrics["decision"] = decision
    locked.metrics, locked.promoted = metrics, True
    locked.save(update_fields=["metrics", "promoted"])
    return locked


def _check_overridable(run: TrainingRun) -> None:
    if run.status != TrainingRun.Status.DONE:
        raise OverrideConflict(_("training run %(id)s is %(status)s: only a finished (done) run can be "
                                 "promoted by override") % {"id": run.pk, "status": status_name(run.status)})
    decision = (run.metrics or {}).get("decision") or {}
    if decision.get("branch") == OVERRIDE:
        raise OverrideConflict(_("training run %(id)s was already promoted by override (%(user)s, %(at)s)") % {
            "id": run.pk, "user": decision.get("overridden_by") or _("unknown user"),
            "at": decision.get("overridden_at")})
    if run.promoted:
        raise OverrideConflict(_("training run %(id)s is already promoted: the gate passed it") % {"id": run.pk})


def best_candidate(candidates) -> str | None:
    """Name of the candidate with the best dev NDCG@10 among those the gate judged (the zero-shot
    base shown only as a reference has no gate result and was not trained); None without any."""
    rows = [c for c in candidates or [] if isinstance(c, dict) and c.get("ndcg@10") is not None]
    judged = [c for c in rows if c.get("gate")] or rows
    return max(judged, key=lambda c: c["ndcg@10"])["name"] if judged else None


@transaction.atomic
def serve_version_again(*, version: ModelVersion, reason: str, user) -> ModelVersion:
    """Roll back (or forward) to an earlier ``version`` of the collection: it serves again, and the
    version keeps who chose it, when and why (``metrics["served_again"]``, newest last). Refused when
    it already serves or its model files are gone."""
    reason = checked_reason(reason)
    locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if locked.is_promoted:
        raise OverrideConflict(_("model version %(id)s already serves") % {"id": locked.pk})
    if not Path(locked.path).is_dir():
        raise OverrideConflict(_("model version %(id)s: its files are gone (%(path)s); it cannot serve again")
                               % {"id": locked.pk, "path": locked.path})
    promote(version=locked)
    metrics = dict(locked.metrics or {})
    metrics["served_again"] = [*(metrics.get("served_again") or []), {
        "by": user.get_username() if user is not None else None, "at": timezone.now().isoformat(), "reason": reason}]
    locked.metrics = metrics
    locked.save(update_fields=["metrics"])
    return locked
