"""The one error an import raises for a bad input file: which file, which line, what is wrong."""
from __future__ import annotations

from pathlib import Path


class ImportFileError(Exception):
    """A file the importer refuses. `line` is 1-based; None for a problem with the whole file
    (missing, empty, unreadable), in which case str() leaves the line out: "corpus.jsonl: empty file".
    """

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(str(self))

    @property
    def name(self) -> str:
        return Path(self.path).name

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.name}: {self.reason}"
        return f"{self.name}:{self.line}: {self.reason}"


class InvalidCollectionSlug(ValueError):
    """The collection name is not a valid slug (lower-case letters, digits, - and _)."""
