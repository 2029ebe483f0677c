"""Uploads of an import started from the web or the API: checked all at once, then stored on disk.

Uploads keep their original (sanitised) file names under DATA_DIR/uploads/<job id>/, because the
importer names judgment sources after them ("qrels:qrels.tsv").
"""
from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from .importer import check_slug

SINGLE_FILE_FIELDS = ("corpus", "queries", "qrels", "run")
MULTI_FILE_FIELDS = ("labels", "clicks")
FILE_FIELDS = (*SINGLE_FILE_FIELDS, *MULTI_FILE_FIELDS)
# Judgment sources are "labels:<name>" in a 255-character column.
MAX_FILE_NAME = 120


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


def validate_uploads(collection_slug: str, files: dict[str, UploadedFile | Sequence[UploadedFile] | None]
              ) -> list[tuple[str, UploadedFile, str]]:
    """Every problem with the request at once (UploadRejected); returns (field, upload, stored name) to store.

    The collection name is checked by the importer's own rule (check_slug).
    """
    errors: dict[str, list[str]] = {}

    def reject(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    try:
        check_slug(collection_slug)
    except ValueError as exc:
        reject("collection", str(exc))
    unknown = sorted(set(files) - set(FILE_FIELDS))
    if unknown:
        reject("__all__", _("unknown file field(s) %(unknown)s; expected %(expected)s")
               % {"unknown": ", ".join(unknown), "expected": ", ".join(FILE_FIELDS)})
    uploads: list[tuple[str, UploadedFile, str]] = []
    for field in FILE_FIELDS:
        chosen = _as_list(files.get(field))
        if field in SINGLE_FILE_FIELDS and len(chosen) > 1:
            reject(field, _("one %(field)s file at most (got %(n)d)") % {"field": field, "n": len(chosen)})
        for upload in chosen:
            name = safe_file_name(upload.name, fallback=field)
            if not upload.size:
                reject(field, _("%(name)s: empty file") % {"name": name})
            uploads.append((field, upload, name))
    if not uploads and not unknown:
        reject("__all__", _("choose at least one file: corpus, queries, qrels, run, labels or click logs"))
    seen: dict[str, str] = {}
    for field, _upload, name in uploads:
        if name in seen:
            reject(field, _("%(name)s: two uploads have this name (%(first)s and %(second)s); rename one")
                   % {"name": name, "first": seen[name], "second": field})
        seen.setdefault(name, field)
    total = sum(upload.size or 0 for _field, upload, _name in uploads)
    limit = settings.IMPORT_UPLOAD_MAX_BYTES
    if total > limit:
        reject("__all__", _("the files total %(total)s, over the upload limit of %(limit)s; "
                            "import files this large with `manage.py import_data`")
               % {"total": _human(total), "limit": _human(limit)})
    if errors:
        raise UploadRejected(errors)
    return uploads


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def store_uploads(uploads: list[tuple[str, UploadedFile, str]], directory: Path) -> dict:
    # The job id is new, so anything already there is left over from another database (a dev reset).
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    stored: dict = {}
    for field, upload, name in uploads:
        path = directory / name
        with open(path, "xb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        if field in MULTI_FILE_FIELDS:
            stored.setdefault(field, []).append(str(path))
        else:
            stored[field] = str(path)
    return stored
