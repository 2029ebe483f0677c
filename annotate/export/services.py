"""Exports: every export is an ExportSnapshot with its parameters, counts, checksum and file.

    snapshot = create_snapshot(collection=c, format="listwise", params={"split": "train"}, created_by=user)

The file is kept under DATA_DIR/exports/<collection>/<snapshot id>.<ext>, so a training run names
exactly the data it used. It is written to a hidden temporary file next to it and renamed when
complete; a failed export leaves no file, only the snapshot with status "failed" and the error.

Reproducible: no timestamps in the file, a fixed order, and on PostgreSQL the whole read runs in
one REPEATABLE READ transaction (one consistent view of the data even while people keep judging),
so the same parameters over unchanged data give a byte-identical file and sha256.

Three ways to run one: `create_snapshot` (synchronous: the command line, the retraining task);
`start_export_job` (a pending snapshot run by `annotate.export.tasks.run_export` on the default
queue once the transaction commits; the worker claims it with a conditional UPDATE, so a redelivered
message does nothing); `stream_export` (the web download: the same bytes are sent to the client as
they are written to the snapshot file).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..language import in_language_of
from ..models import Collection, ExportSnapshot, Judgment
from .filters import ExportParamsError, check_format, parse_params
from .reading import query_groups
from .records import ReadCounts
from .writers import WRITERS, ExportDataError

CHUNK_BYTES = 256 * 1024  # what a download is sent in
FILE_BUFFER_BYTES = 8 * 1024 * 1024

__all__ = ["ExportDataError", "ExportFailed", "ExportParamsError", "create_snapshot", "start_export_job",
           "run_export_job", "stream_export", "snapshot_path"]


class ExportFailed(RuntimeError):
    """The export ran and failed; the snapshot is marked failed with this error."""

    def __init__(self, snapshot: ExportSnapshot, message: str):
        super().__init__(message)
        self.snapshot = snapshot


def snapshot_path(snapshot: ExportSnapshot) -> Path:
    extension = WRITERS[snapshot.format].extension
    return Path(settings.DATA_DIR) / "exports" / snapshot.collection.slug / f"{snapshot.pk}.{extension}"


def human_judgment_count(collection: Collection) -> int:
    """People's grades in the collection (what retraining compares snapshots by)."""
    return Judgment.objects.filter(collection=collection).people_grades().count()


def new_snapshot(*, collection: Collection, format: str, params: dict | None, created_by=None,
                 status: str = ExportSnapshot.Status.RUNNING) -> ExportSnapshot:
    """Check the parameters (ExportParamsError names a bad one) and record the snapshot."""
    check_format(format)
    parsed = parse_params(params)
    return ExportSnapshot.objects.create(
        collection=collection, created_by=created_by if getattr(created_by, "pk", None) else None,
        format=format, split=parsed.split, params=parsed.as_dict(), status=status,
    )


def create_snapshot(*, collection: Collection, format: str = "listwise", params: dict | None = None,
                    created_by=None, progress: Callable[[int], None] | None = None) -> ExportSnapshot:
    """Export now and return the done snapshot; ExportParamsError before anything is recorded,
    ExportFailed (snapshot marked failed, no file) if the export itself fails."""
    snapshot = new_snapshot(collection=collection, format=format, params=params, created_by=created_by)
    for _ in stream_export(snapshot, progress=progress):
        pass
    return snapshot


@transaction.atomic
def start_export_job(*, collection: Collection, format: str = "listwise", params: dict | None = None,
                     created_by=None) -> ExportSnapshot:
    """A pending snapshot, exported by a worker once this transaction commits."""
    snapshot = new_snapshot(collection=collection, format=format, params=params, created_by=created_by,
                            status=ExportSnapshot.Status.PENDING)
    from .tasks import run_export

    transaction.on_commit(lambda: run_export.delay(snapshot.pk))
    return snapshot


def run_export_job(*, snapshot_id: int) -> ExportSnapshot | None:
    """Run a pending snapshot; None if it was not pending (already taken by another worker). A
    failure is stored in the language of whoever started the export."""
    with ExportSnapshot.objects.select_related("collection").claim(snapshot_id) as snapshot:
        if snapshot is None:
            return None
        with in_language_of(snapshot.created_by_id), contextlib.suppress(ExportFailed):
            for _ in stream_export(snapshot):
                pass
    return snapshot


def stream_export(snapshot: ExportSnapshot, *, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Write the snapshot's file and yield its bytes as they are written.

    Closing the generator early (a download cut off) fails the snapshot and removes the partial
    file, like any other error.
    """
    final = snapshot_path(snapshot)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    size = 0
    try:
        params = parse_params(snapshot.params)
        read_counts = ReadCounts()
        writer = WRITERS[snapshot.format](params)
        # A large buffer: the file gets one write call per FILE_BUFFER_BYTES. Each write releases
        # the interpreter lock, and on PostgreSQL a reader thread runs beside this one (postgres.py),
        # so every write could wait a switch interval (5 ms) to get the lock back.
        with open(temporary, "wb", buffering=FILE_BUFFER_BYTES) as out, _consistent_read():
            n_judgments = human_judgment_count(snapshot.collection)
            pending: list[str] = []
            pending_size = 0
            for line in writer.lines(query_groups(snapshot.collection, params, read_counts, progress)):
                pending.append(line)
                pending_size += len(line)
                if pending_size >= CHUNK_BYTES:
                    chunk = "".join(pending).encode("utf-8")
                    pending, pending_size = [], 0
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk
            chunk = "".join(pending).encode("utf-8")
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except GeneratorExit:
        _fail(snapshot, temporary, gettext("the download was interrupted before the export finished"))
        raise
    except Exception as error:  # noqa: BLE001 -- any failure marks the snapshot failed, then propagates
        message = str(error) if isinstance(error, (ExportDataError, ExportParamsError)) else f"{type(error).__name__}: {error}"
        _fail(snapshot, temporary, message)
        raise ExportFailed(snapshot, message) from error
    snapshot.status = ExportSnapshot.Status.DONE
    snapshot.file_path = str(final)
    snapshot.size_bytes = size
    snapshot.sha256 = digest.hexdigest()
    snapshot.n_judgments = n_judgments
    snapshot.counts = {**writer.counts, **read_counts.as_dict()}
    snapshot.finished_at = timezone.now()
    snapshot.save(update_fields=["status", "file_path", "size_bytes", "sha256", "n_judgments", "counts", "finished_at"])
    # The last bytes go out once the snapshot is complete: a client leaving now loses nothing.
    if chunk:
        yield chunk


@contextlib.contextmanager
def _consistent_read():
    """One snapshot of the data for the whole read (PostgreSQL: REPEATABLE READ), where we own the
    transaction; inside a caller's transaction its isolation applies."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                # The read is many small lookups by lists of ids (reading.py). Given workers, the
                # planner answers a 5000-id lookup with a parallel scan of the whole judgment table,
                # and starting workers per statement costs more than the statement.
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def _fail(snapshot: ExportSnapshot, temporary: Path, message: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    snapshot.status = ExportSnapshot.Status.FAILED
    snapshot.error = message
    snapshot.finished_at = timezone.now()
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(status=snapshot.status, error=message,
                                                         finished_at=snapshot.finished_at)
