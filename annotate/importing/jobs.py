"""Imports as background jobs: start one from uploads, run it on a worker, recover it after a crash.

    job = start_import(collection_slug="dl19", files={"corpus": upload, "qrels": upload}, created_by=user)
    # ... a worker calls execute_import(job_id=job.pk) through annotate.tasks.run_import

The job row carries the state the job page polls: status, bytes done of bytes total, the
collection's totals or the error. Claim, liveness and the recovery sweep are the job base's
(annotate/models/jobs.py).
"""
from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.db import connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..language import in_language_of
from ..models import Collection, ImportJob
from ..totals import totals_by_collection
from .errors import ImportFileError, InvalidCollectionSlug
from .importer import import_files
from .uploads import store_uploads, upload_dir, validate_uploads

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
MAX_RESTARTS = 1
RESEND_AFTER_S = 120


def start_import(*, collection_slug: str, files: dict[str, UploadedFile | Sequence[UploadedFile] | None],
                 created_by) -> ImportJob:
    """Validate the upload, store its files and queue the import; raises UploadRejected.

    A new slug creates an empty collection now: the job belongs to one. The worker is queued only
    once the job row is committed, so it never looks for a job that does not exist yet.
    """
    uploads = validate_uploads(collection_slug, files)
    with transaction.atomic():
        collection, _ = Collection.objects.get_or_create(slug=collection_slug, defaults={"name": collection_slug})
        job = ImportJob.objects.create(collection=collection, created_by=created_by)
        directory = upload_dir(job.pk)
        try:
            job.files = store_uploads(uploads, directory)
            job.bytes_total = sum(upload.size for _, upload, _ in uploads)
            job.save(update_fields=["files", "bytes_total"])
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> bool:
    """Queue the job; with the broker down it stays pending and the next worker's sweep sends it."""
    from annotate.tasks import run_import

    try:
        run_import.delay(job_id)
    except Exception as error:  # noqa: BLE001 -- the job row is committed; recover_lost_imports resends it
        log.warning("could not queue import job %s (%s); a worker sends it when it starts", job_id, error)
        return False
    return True


def execute_import(*, job_id: int) -> ImportJob | None:
    """Run a pending job to done or failed; a job already claimed or finished is left alone.

    Not atomic itself: the importer runs in its own transaction (all or nothing), and the job's
    status and progress must be visible while it runs. The job stays held until its end is
    written: a job seen running with nobody holding it lost its worker (recover_lost_imports).
    """
    with ImportJob.objects.select_related("collection").claim(job_id) as job:
        if job is None:
            return None
        # The refusal ("qrels.tsv:3: unknown doc id 'd9'") is written now and read later on the job
        # page: in the language of whoever started the import, as the importer builds it.
        with in_language_of(job.created_by_id):
            return _run(job)


def _run(job: ImportJob) -> ImportJob:
    paths = job.files
    progress = ProgressWriter(job_id=job.pk)
    try:
        # Click logs come after the other files (their documents may be in this corpus), in the
        # same transaction: a bad log undoes the whole import.
        with transaction.atomic():
            totals = None
            if any(paths.get(field) for field in ("corpus", "queries", "qrels", "run", "labels")):
                totals = import_files(
                    collection_slug=job.collection.slug,
                    corpus=_path(paths.get("corpus")), queries=_path(paths.get("queries")),
                    qrels=_path(paths.get("qrels")), run=_path(paths.get("run")),
                    labels=[Path(p) for p in paths.get("labels", [])], progress=progress,
                )
            if paths.get("clicks"):
                # Imported here: annotate.clicks reads files with this package's line reader, so a
                # module-level import would make the two packages import each other at start-up.
                from ..clicks.services import import_click_logs

                clicks = import_click_logs(collection=job.collection, paths=paths["clicks"],
                                           imported_by=job.created_by)
                totals = {"collection": job.collection.slug, **totals_by_collection([job.collection])[job.collection.pk],
                          "click_labels": clicks["click_labels"], "click_logs": clicks}
    except (ImportFileError, InvalidCollectionSlug, ValueError) as failure:
        return _finish(job, status=ImportJob.Status.FAILED, error=str(failure))
    except Exception as failure:
        log.exception("import job %s failed", job.pk)
        _finish(job, status=ImportJob.Status.FAILED, error=_("internal error: %(kind)s: %(error)s")
                % {"kind": type(failure).__name__, "error": failure})
        raise
    finally:
        progress.close()
    # The new pairs and ranks in the judging order (in the worker, so the first annotator after a
    # large import does not wait for it).
    from ..judging.priorities import refresh_all

    try:
        refresh_all(job.collection)
    except Exception:  # the import stands; next_task recomputes stale queries itself
        log.exception("import job %s: the judging order was not recomputed", job.pk)
    return _finish(job, status=ImportJob.Status.DONE, result=totals)


def recover_lost_imports() -> dict[int, str]:
    """Jobs left behind by a dead worker; returns {job id: "requeued" | "failed" | "resent"}.

    The importer writes in one transaction, so a killed import left nothing behind and its files
    are still on disk: it is sent again once (``result["restarts"]`` counts), then failed. A job
    still pending a while after it was last sent lost its message (the broker was down when it was
    queued): sent again.
    """
    return ImportJob.objects.recover_lost(recover=_recover, send=_enqueue,
                                          resend_after=timedelta(seconds=RESEND_AFTER_S))


def _recover(job: ImportJob, *, gone: bool, now: datetime) -> str | None:
    restarts = int((job.result or {}).get("restarts", 0))
    if restarts < MAX_RESTARTS:
        requeued = ImportJob.objects.requeue(job, now=now, started_at=None, bytes_done=0,
                                             result={"restarts": restarts + 1})
        return "requeued" if requeued else None
    if not ImportJob.objects.owned_by_attempt(job.pk, job.attempts).exists():
        return None
    with in_language_of(job.created_by_id):
        error = _("the worker stopped (killed or lost) during each of %(attempts)d attempts; "
                  "nothing was imported -- start the import again") % {"attempts": restarts + 1}
    _finish(job, status=ImportJob.Status.FAILED, error=error)
    return "failed"


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _finish(job: ImportJob, *, status: str, result: dict | None = None, error: str = "") -> ImportJob:
    job.status = status
    job.result = result or {}
    job.error = error
    job.finished_at = timezone.now()
    if status == ImportJob.Status.DONE:
        job.bytes_done = job.bytes_total
    job.save(update_fields=["status", "result", "error", "finished_at", "bytes_done"])
    # The files were only kept for this run; what they held is in the database now (or refused).
    shutil.rmtree(upload_dir(job.pk), ignore_errors=True)
    return job


class ProgressWriter:
    """The importer's progress callback: writes bytes_done to the job row at most every half second.

    The import runs inside one transaction, so an UPDATE on the task's own connection would stay
    invisible to the job page until the very end; this writes through a second, autocommit
    connection instead. SQLite has a single writer, and the import holds it for its whole run, so
    there the bar jumps from 0 to done (the job page shows it as running meanwhile).
    """

    def __init__(self, *, job_id: int, interval: float = PROGRESS_INTERVAL_S):
        self.job_id = job_id
        self.interval = interval
        self.last = 0.0
        self.side = None
        main = connections[ImportJob.objects.db]
        if main.vendor != "sqlite":
            self.side = type(main)({**main.settings_dict, "CONN_MAX_AGE": 0}, alias="import-progress")

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.side is None or (now - self.last < self.interval and done < total):
            return
        self.last = now
        try:
            table = self.side.ops.quote_name(ImportJob._meta.db_table)
            with self.side.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET bytes_done = %s, bytes_total = %s WHERE id = %s",
                               [done, total, self.job_id])
        except Exception:  # progress is a courtesy: never let it fail the import
            log.warning("could not record progress of import job %s", self.job_id, exc_info=True)

    def close(self) -> None:
        if self.side is not None:
            self.side.close()
