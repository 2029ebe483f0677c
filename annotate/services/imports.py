"""Imports started from the web or the API: store the uploads, queue the job, run it on a worker.

    job = start_import(collection_slug="dl19", files={"corpus": upload, "qrels": upload}, created_by=user)
    # ... a worker calls execute_import(job_id=job.pk) through annotate.tasks.run_import

Uploads keep their original (sanitised) file names under DATA_DIR/uploads/<job id>/, because the
importer names judgment sources after them ("qrels:qrels.tsv"). The job row carries the state the
job page polls: status, bytes done of bytes total, the collection's totals or the error.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
import unicodedata
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connections, transaction
from django.utils import timezone

from ..models import Collection, ImportJob

log = logging.getLogger(__name__)

SINGLE_FILE_FIELDS = ("corpus", "queries", "qrels", "run")
FILE_FIELDS = (*SINGLE_FILE_FIELDS, "labels")
# Judgment sources are "labels:<name>" in a 255-character column.
MAX_FILE_NAME = 120
PROGRESS_INTERVAL_S = 0.5


class UploadRejected(ValueError):
    """The upload cannot be imported. `errors` maps a field ("collection", "corpus", ..., or
    "__all__") to its messages, so a form can show each beside its field."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(message for messages in errors.values() for message in messages))


def upload_dir(job_id: int) -> Path:
    return Path(settings.DATA_DIR) / "uploads" / str(job_id)


def safe_file_name(name: str, *, fallback: str) -> str:
    """The upload's own base name, reduced to letters, digits, '.', '-' and '_' (CJK letters kept)."""
    base = unicodedata.normalize("NFC", re.split(r"[\\/]", name or "")[-1])
    base = re.sub(r"[^\w.-]", "_", base).lstrip(".")
    if len(base) > MAX_FILE_NAME:
        stem, dot, suffix = base.rpartition(".")
        keep_suffix = dot and len(suffix) < 16
        base = stem[: MAX_FILE_NAME - len(suffix) - 1] + dot + suffix if keep_suffix else base[:MAX_FILE_NAME]
    return base or fallback


def _as_list(value) -> list[UploadedFile]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [f for f in value if f is not None]
    return [value]


def _validate(collection_slug: str, files: dict[str, UploadedFile | Sequence[UploadedFile] | None]
              ) -> list[tuple[str, UploadedFile, str]]:
    """Every problem with the request at once; returns (field, upload, stored name) to store."""
    from annotate.importing.service import (
        check_slug,  # the importer's own rule for a collection name
    )

    errors: dict[str, list[str]] = {}

    def reject(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    try:
        check_slug(collection_slug)
    except ValueError as exc:
        reject("collection", str(exc))
    unknown = sorted(set(files) - set(FILE_FIELDS))
    if unknown:
        reject("__all__", f"unknown file field(s) {', '.join(unknown)}; expected {', '.join(FILE_FIELDS)}")
    uploads: list[tuple[str, UploadedFile, str]] = []
    for field in FILE_FIELDS:
        chosen = _as_list(files.get(field))
        if field in SINGLE_FILE_FIELDS and len(chosen) > 1:
            reject(field, f"one {field} file at most (got {len(chosen)})")
        for upload in chosen:
            name = safe_file_name(upload.name, fallback=field)
            if not upload.size:
                reject(field, f"{name}: empty file")
            uploads.append((field, upload, name))
    if not uploads and not unknown:
        reject("__all__", "choose at least one file: corpus, queries, qrels, run or labels")
    seen: dict[str, str] = {}
    for field, _, name in uploads:
        if name in seen:
            reject(field, f"{name}: two uploads have this name ({seen[name]} and {field}); rename one")
        seen.setdefault(name, field)
    total = sum(upload.size or 0 for _, upload, _ in uploads)
    limit = settings.IMPORT_UPLOAD_MAX_BYTES
    if total > limit:
        reject("__all__", f"the files total {_human(total)}, over the upload limit of {_human(limit)}; "
                          f"import files this large with `manage.py import_data`")
    if errors:
        raise UploadRejected(errors)
    return uploads


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def start_import(*, collection_slug: str, files: dict[str, UploadedFile | Sequence[UploadedFile] | None],
                 created_by) -> ImportJob:
    """Validate the upload, store its files and queue the import; raises UploadRejected.

    A new slug creates an empty collection now: the job belongs to one. The worker is queued only
    once the job row is committed, so it never looks for a job that does not exist yet.
    """
    uploads = _validate(collection_slug, files)
    with transaction.atomic():
        collection, _ = Collection.objects.get_or_create(slug=collection_slug, defaults={"name": collection_slug})
        job = ImportJob.objects.create(collection=collection, created_by=created_by)
        directory = upload_dir(job.pk)
        try:
            job.files = _store(uploads, directory)
            job.bytes_total = sum(upload.size for _, upload, _ in uploads)
            job.save(update_fields=["files", "bytes_total"])
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _store(uploads: list[tuple[str, UploadedFile, str]], directory: Path) -> dict:
    # The job id is new, so anything already there is left over from another database (a dev reset).
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    stored: dict = {}
    for field, upload, name in uploads:
        path = directory / name
        with open(path, "xb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        if field == "labels":
            stored.setdefault("labels", []).append(str(path))
        else:
            stored[field] = str(path)
    return stored


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
    status and progress must be visible while it runs.
    """
    from .liveness import WorkerHold

    # Held until the job's end is written: a job seen running with its lock free lost its worker
    # (recover_lost_imports). The lock first, the claim second.
    hold = WorkerHold("import", job_id)
    try:
        if not hold.acquire():
            return None  # a live worker runs it: this message is a duplicate
        claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
            status=ImportJob.Status.RUNNING, started_at=timezone.now())
        if not claimed:
            return None  # run already (or running elsewhere): a redelivered message changes nothing
        return _run(ImportJob.objects.select_related("collection").get(pk=job_id))
    finally:
        hold.release()


def _run(job: ImportJob) -> ImportJob:
    from annotate.importing import ImportFileError, InvalidCollectionSlug, import_files

    job_id = job.pk
    paths = job.files
    progress = ProgressWriter(job_id=job.pk)
    try:
        totals = import_files(
            collection_slug=job.collection.slug,
            corpus=_path(paths.get("corpus")), queries=_path(paths.get("queries")),
            qrels=_path(paths.get("qrels")), run=_path(paths.get("run")),
            labels=[Path(p) for p in paths.get("labels", [])], progress=progress,
        )
    except (ImportFileError, InvalidCollectionSlug, ValueError) as failure:
        return _finish(job, status=ImportJob.Status.FAILED, error=str(failure))
    except Exception as failure:
        log.exception("import job %s failed", job_id)
        _finish(job, status=ImportJob.Status.FAILED, error=f"internal error: {type(failure).__name__}: {failure}")
        raise
    finally:
        progress.close()
    return _finish(job, status=ImportJob.Status.DONE, result=totals)


MAX_RESTARTS = 1
RESEND_AFTER_S = 120


def recover_lost_imports() -> dict[int, str]:
    """Jobs left behind by a dead worker; returns {job id: "requeued" | "failed" | "resent"}.

    The importer writes in one transaction, so a killed import left nothing behind and its files
    are still on disk: it is sent again once (``result["restarts"]`` counts), then failed. A job
    still pending a while after it was created lost its message (the broker was down when it was
    queued): sent again; a duplicate message is harmless (the job is claimed once).
    """
    from .liveness import abandoned

    outcomes: dict[int, str] = {}
    for job in ImportJob.objects.filter(status=ImportJob.Status.RUNNING):
        with abandoned("import", job.pk) as gone:
            if not gone:
                continue
            restarts = int((job.result or {}).get("restarts", 0))
            this_run = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, started_at=job.started_at)
            if restarts < MAX_RESTARTS:
                if this_run.update(status=ImportJob.Status.PENDING, started_at=None, bytes_done=0,
                                   result={"restarts": restarts + 1}):
                    outcomes[job.pk] = "requeued"
            elif this_run.exists():
                _finish(job, status=ImportJob.Status.FAILED, error=(
                    f"the worker stopped (killed or lost) during each of {restarts + 1} attempts; "
                    "nothing was imported -- start the import again"))
                outcomes[job.pk] = "failed"
    quiet_since = timezone.now() - timedelta(seconds=RESEND_AFTER_S)
    for job_id in ImportJob.objects.filter(status=ImportJob.Status.PENDING, created_at__lt=quiet_since,
                                           ).values_list("pk", flat=True):
        outcomes.setdefault(job_id, "resent")
    for job_id, outcome in outcomes.items():
        if outcome in ("requeued", "resent"):
            _enqueue(job_id)  # after the locks are released, or the new task would back off
    if outcomes:
        log.warning("import jobs recovered: %s", outcomes)
    return outcomes


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
