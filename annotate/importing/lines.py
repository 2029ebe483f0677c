"""Streaming a text file line by line: bytes in, (line number, decoded line) out.

Files are read in binary and each line decoded on its own, so invalid UTF-8 is reported at its
line and a file is never held in memory whole. Blank lines are skipped (a trailing newline is
not a row); a file without a single non-blank line is refused as empty.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.utils.translation import gettext as _

from annotate.formats import json_type

from .errors import ImportFileError


class ByteProgress:
    """Counts bytes read across all files of an import; reports now and then, not every line."""

    REPORT_EVERY_BYTES = 1 << 20
    REPORT_EVERY_SECONDS = 0.5

    def __init__(self, total: int, callback: Callable[[int, int], None] | None, bar: bool):
        self.total = total
        self.done = 0
        self.callback = callback
        self._reported_bytes = 0
        self._reported_at = time.monotonic()
        self._bar = None
        if bar:
            import sys

            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                             desc="import", file=sys.stderr, leave=True)

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self.callback is not None and (
            self.done - self._reported_bytes >= self.REPORT_EVERY_BYTES
            or time.monotonic() - self._reported_at >= self.REPORT_EVERY_SECONDS
        ):
            self._report()

    def _report(self) -> None:
        self._reported_bytes = self.done
        self._reported_at = time.monotonic()
        self.callback(self.done, self.total)

    def finish(self) -> None:
        if self.callback is not None:
            self._report()
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def file_sha256(path: Path) -> str:
    """The file's sha256, read 1 MiB at a time (a click log's identity, a backup's checksum)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_readable(path: Path) -> None:
    if not path.exists():
        raise ImportFileError(path, None, _("no such file"))
    if not path.is_file():
        raise ImportFileError(path, None, _("not a regular file"))


def read_lines(path: Path, progress: ByteProgress | None = None) -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its line ending) for every non-blank line."""
    check_readable(path)
    any_row = False
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise ImportFileError(path, None, _("cannot be read (%(reason)s)") % {"reason": error.strerror}) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if progress is not None:
                progress.advance(len(raw))
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ImportFileError(path, number, _("invalid UTF-8 (byte 0x%(byte)02x at column %(column)d)")
                                      % {"byte": raw[error.start], "column": error.start + 1}) from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]  # a UTF-8 byte-order mark, as some Windows editors write
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "\x00" in line:
                raise ImportFileError(path, number, _("NUL character in the line"))
            any_row = True
            yield number, line
    if not any_row:
        raise ImportFileError(path, None, _("empty file"))


def json_error_reason(error: json.JSONDecodeError) -> str:
    """"Expecting value at column 15", "Unterminated string starting at column 7": some of json's
    messages already end in "at", which must not read "starting at at column". json's own message
    stays English (it has no catalogue); the column around it is translated."""
    if error.msg.endswith(" at"):
        return _("%(message)s column %(column)d") % {"message": error.msg, "column": error.colno}
    return _("%(message)s at column %(column)d") % {"message": error.msg, "column": error.colno}


def read_json_objects(path: Path, progress: ByteProgress | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for a JSON-lines file whose every line is one JSON object."""
    for number, line in read_lines(path, progress):
        try:
            row = json.loads(line, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as error:
            reason = json_error_reason(error) if isinstance(error, json.JSONDecodeError) else str(error)
            raise ImportFileError(path, number, _("bad JSON (%(reason)s)") % {"reason": reason}) from None
        if not isinstance(row, dict):
            raise ImportFileError(path, number, _("expected a JSON object, got %(type)s") % {"type": json_type(row)})
        # PostgreSQL cannot store NUL in text or jsonb; refuse it here, at its line.
        if "\\u0000" in line and _has_nul(row):
            raise ImportFileError(path, number, _("contains a NUL character (\\u0000), which cannot be stored"))
        yield number, row


def _refuse_constant(name: str):
    raise ValueError(_("%(constant)s is not valid JSON") % {"constant": name})


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
