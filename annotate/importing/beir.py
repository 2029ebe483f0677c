"""BEIR corpus and queries: JSON lines `{"_id", "title"?, "text", ...}`.

`_id` is a string (a JSON integer is accepted and stored as its decimal string), `text` a string,
`title` an optional string (null counts as none). Every other field is kept as the row's metadata.
Queries have no title column: a query's title, if any, is kept in its metadata.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from annotate.formats import FormatError, external_id, string_field

from .errors import ImportFileError
from .lines import ByteProgress, read_json_objects


@dataclass(slots=True)
class BeirRecord:
    line: int
    external_id: str
    title: str
    text: str
    metadata: dict


def read_beir(path: Path, progress: ByteProgress | None = None, *, with_title: bool = True) -> Iterator[BeirRecord]:
    for line, row in read_json_objects(path, progress):
        try:
            if "_id" not in row:
                raise FormatError(_("missing field '%(field)s'") % {"field": "_id"})
            ident = external_id(row["_id"], "_id")
            text = string_field(row, "text")
            title = string_field(row, "title", required=False, allow_null=True) if with_title else None
        except FormatError as error:
            raise ImportFileError(path, line, str(error)) from None
        kept = ("_id", "text", "title") if with_title else ("_id", "text")
        metadata = {key: value for key, value in row.items() if key not in kept}
        yield BeirRecord(line, ident, title or "", text, metadata)
