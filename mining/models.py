"""Mining jobs: a collection mined for hard-negative candidates, in chunks, by Celery workers."""
from django.db import models
from django.utils.translation import gettext_lazy as _

from annotate.models.jobs import Job


class MiningJob(Job):
    """Held by nobody: its chunks carry the liveness (MiningChunk), as many workers share one job."""

    collection = models.ForeignKey("annotate.Collection", on_delete=models.CASCADE, related_name="mining_jobs")
    method = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True)
    queries_total = models.PositiveIntegerField(default=0)
    queries_done = models.PositiveIntegerField(default=0)
    candidates_added = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # Warnings found while preparing the job (e.g. a tokenizer that cannot read the corpus).
    warnings = models.JSONField(default=list, blank=True)

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["collection", "status"], name="mining_job_collection_status")]

    def __str__(self) -> str:
        return f"mining job {self.pk} ({self.method}) of {self.collection_id}: {self.status}"


class MiningChunk(models.Model):
    """A slice of a job's queries, mined by one task; `done` commits with its candidates.

    The chunk's candidates, its `done` status and the job's counters are written in one
    transaction, so a redelivered or duplicated chunk task finds `done` and changes nothing.
    Its worker beats a heartbeat while mining it (config/liveness.py): many short tasks share a job.
    """

    LIVENESS = "mining:chunk"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    job = models.ForeignKey(MiningJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    query_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    # The Celery worker that last started it: a dead worker's chunk is given to another.
    worker = models.CharField(max_length=255, blank=True)
    candidates_added = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="mining_chunk_unique")]
        indexes = [models.Index(fields=["job", "status"], name="mining_chunk_job_status")]
