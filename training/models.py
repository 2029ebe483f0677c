"""Training runs, the models they produce, and when a collection retrains by itself."""
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from annotate.models.jobs import Job

from .config import DEFAULT_PROMOTION_MARGIN, TrainingParamsError, train_config


class TrainingRun(Job):
    LIVENESS = "training"

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Manual")
        SCHEDULE = "schedule", _("Schedule")

    collection = models.ForeignKey("annotate.Collection", on_delete=models.CASCADE, related_name="training_runs")
    snapshot = models.ForeignKey("annotate.ExportSnapshot", on_delete=models.PROTECT, related_name="training_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    base_model = models.CharField(max_length=500)
    params = models.JSONField(default=dict, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    # [[stage, step, loss], ...] as the run goes (at most LOSS_CURVE_POINTS, thinned evenly): the
    # run page draws it while the run trains.
    loss_curve = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text=_("Dev metrics of base, BM25, promoted and new model."))
    promoted = models.BooleanField(default=False)
    output_dir = models.CharField(max_length=500, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta(Job.Meta):
        constraints = [
            # Never two runs of one collection at once.
            models.UniqueConstraint(
                fields=["collection"], condition=Q(status__in=["pending", "running"]), name="training_one_active_run",
            ),
        ]


class ModelVersionQuerySet(models.QuerySet):
    def promoted(self, collection=None) -> models.QuerySet:
        """The promoted version (the one that serves and mines), of ``collection`` if given, newest
        promotion first: at most one per collection (model_one_promoted)."""
        versions = self.filter(is_promoted=True)
        if collection is not None:
            versions = versions.filter(collection=collection)
        return versions.order_by("-promoted_at", "-pk")


class ModelVersion(models.Model):
    """A trained reranker on disk; at most one per collection is promoted (serves and mines)."""

    collection = models.ForeignKey("annotate.Collection", on_delete=models.CASCADE, related_name="model_versions")
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version")
    path = models.CharField(max_length=500)
    # The bi-encoder dense mining uses while this version serves (training.miner): the version
    # itself when it is a bi-encoder, else one distilled from its scores. Blank until built.
    miner_path = models.CharField(max_length=500, blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    is_promoted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["collection"], condition=Q(is_promoted=True), name="model_one_promoted"),
        ]


class MachineJudgeRun(Job):
    """One request for the machine judge's grades of a collection (training.machine_judge): queued
    after each promotion with the promoted version, or by staff from the training page with the
    served version (the base model before any promotion). The task is safe to run twice; this row
    says what it did, for the page: the calibration it chose, the grades it added and revised, or
    why it judged nothing."""

    LIVENESS = "machine-judge"

    collection = models.ForeignKey("annotate.Collection", on_delete=models.CASCADE, related_name="machine_judge_runs")
    # The version that judges; null: the base model (no version served when it was asked for).
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_path = models.CharField(max_length=500)
    result = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        constraints = [
            # Never two at once for a collection: two judges would write the same source's grades.
            models.UniqueConstraint(fields=["collection"], condition=Q(status__in=["pending", "running"]),
                                    name="machine_judge_one_active_run"),
        ]

    def __str__(self) -> str:
        return f"machine judge run {self.pk} of {self.collection_id}: {self.status}"

    @property
    def note(self) -> str:
        """What the page says beside the figures: why it failed or was cancelled, why it judged
        nothing, or why the text calibration was not tried."""
        result = self.result or {}
        return self.error or result.get("skipped_reason") or result.get("calibration_reason") or ""


class RetrainPolicy(models.Model):
    """When a collection retrains by itself: a beat schedule plus a minimum of new judgments."""

    collection = models.OneToOneField("annotate.Collection", on_delete=models.CASCADE, related_name="retrain_policy")
    enabled = models.BooleanField(default=True)
    min_new_judgments = models.PositiveIntegerField(default=500)
    promotion_margin = models.FloatField(default=DEFAULT_PROMOTION_MARGIN, help_text=_("Dev NDCG@10 gain needed to promote."))
    params = models.JSONField(default=dict, blank=True)
    # "Enough judged" once the served model's dev NDCG@10 interval is at most this wide
    # (training.stopping); null: no target.
    stop_width = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.001), MaxValueValidator(1.0)],
                                   help_text=_("Enough judged when the served model's dev interval is this narrow."))
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )

    POLICY_PARAMS = ("train", "export")

    def train_params(self) -> dict:
        """The params of a run this policy starts: its margin, then its ``params["train"]``."""
        return {"promotion_margin": self.promotion_margin, **self.params.get("train", {})}

    def clean(self):
        """``params`` is ``{"train": {...}, "export": {...}}``; the training part is checked as a run
        would check it, so a bad value is refused in the admin form, not at 3 a.m. by the schedule."""
        if not isinstance(self.params, dict):
            raise ValidationError({"params": 'must be a JSON object: {"train": {...}, "export": {...}}'})
        unknown = sorted(set(self.params) - set(self.POLICY_PARAMS))
        if unknown:
            raise ValidationError({"params": f"unknown key(s) {', '.join(map(repr, unknown))}; known: train, export"})
        for key in self.POLICY_PARAMS:
            if not isinstance(self.params.get(key, {}), dict):
                raise ValidationError({"params": f"'{key}' must be a JSON object"})
        try:
            train_config(self.train_params())
        except TrainingParamsError as error:
            raise ValidationError({"params": f"train {error}"}) from None
