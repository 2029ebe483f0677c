"""Mining jobs: a collection mined for hard-negative candidates, in chunks, by Celery workers."""
from django.conf import settings
from django.db import models


class MiningJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    collection = models.ForeignKey("annotate.Collection", on_delete=models.CASCADE, related_name="mining_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    method = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    queries_total = models.PositiveIntegerField(default=0)
    queries_done = models.PositiveIntegerField(default=0)
    candidates_added = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Warnings found while preparing the job (e.g. a tokenizer that cannot read the corpus).
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["collection", "status"], name="mining_job_collection_status")]

    def __str__(self) -> str:
        return f"mining job {self.pk} ({self.method}) of {self.collection_id}: {self.status}"


class MiningChunk(models.Model):
    """A slice of a job's queries, mined by one task; `done` commits with its candidates.

    The chunk's candidates, its `done` status and the job's counters are written in one
    transaction, so a redelivered or duplicated chunk task finds `done` and changes nothing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

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
