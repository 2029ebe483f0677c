"""`import_files`: one import of corpus, queries, qrels, run and labelled files into a collection.

Atomic per run: everything happens inside one transaction, so a bad line anywhere (or any other
error) leaves the database exactly as it was, a newly created collection included. The phases run
in a fixed order — corpus, queries, qrels, run, labels — so later files can refer to the ids of
earlier ones (or to ids already in the collection).

What each file becomes:
- corpus / queries: Documents / Queries, upserted by external id; a changed text updates the row,
  and the collection's corpus_version is bumped once if any document was added or changed.
- qrels: a Candidate per row (source "qrels": {}) and a Judgment with no annotator and the source
  "qrels:<file name>". A re-import with a changed grade updates the judgment and records a
  JudgmentRevision (changed_by_source = that source).
- run: a Candidate per row, source "run:<tag>": {"rank", "score"}; other sources are kept.
- labels: queries and documents as needed, Candidates (source "labels"), and Judgments with the
  source "labels:<file name>" for every labelled pair. Pairwise rows give no grade (a preference
  is not a grade): both documents become candidates with sources["labels"] = {"role": "positive"
  or "negative"} ("both" for a document on both sides of different pairs) and no judgment.
Nothing is ever deleted.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from ..models import Collection, Document, Query
from ..selectors import collection_totals
from .beir import read_beir
from .errors import ImportFileError, InvalidCollectionSlug
from .labels import LabeledRow, read_labels
from .lines import ByteProgress, check_readable
from .qrels import read_qrels
from .store import BATCH_SIZE, CandidateWriter, EntityTable
from .trec_run import read_run

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SLUG_MAX_LENGTH = 64
SOURCE_MAX_LENGTH = 255


@dataclass
class ImportReport:
    totals: dict
    seconds: dict[str, float] = field(default_factory=dict)  # per phase
    counts: dict[str, int] = field(default_factory=dict)  # rows added / changed by this import


def import_files(*, collection_slug: str, corpus: Path | None = None, queries: Path | None = None,
                 qrels: Path | None = None, run: Path | None = None, labels: Sequence[Path] = (),
                 progress: Callable[[int, int], None] | None = None, progress_bar: bool = False) -> dict:
    """Import the given files into the collection (created if missing); return its totals.

    Raises ImportFileError (file, line, reason) for a bad file, InvalidCollectionSlug for a bad
    collection name and ValueError when no file is given; in every case nothing is written.
    `progress(bytes_done, bytes_total)` is called now and then while the files are read.
    """
    return run_import(collection_slug=collection_slug, corpus=corpus, queries=queries, qrels=qrels, run=run,
                      labels=labels, progress=progress, progress_bar=progress_bar).totals


@transaction.atomic
def run_import(*, collection_slug: str, corpus: Path | None = None, queries: Path | None = None,
               qrels: Path | None = None, run: Path | None = None, labels: Sequence[Path] = (),
               progress: Callable[[int, int], None] | None = None, progress_bar: bool = False) -> ImportReport:
    """import_files, reporting per-phase timings and what was added or changed (for bench/import.py)."""
    inputs = {"corpus": corpus, "queries": queries, "qrels": qrels, "run": run}
    files = [Path(p) for p in inputs.values() if p is not None] + [Path(p) for p in labels]
    if not files:
        raise ValueError(_("nothing to import: give at least one of corpus, queries, qrels, run or labels"))
    check_slug(collection_slug)
    for path in files:
        check_readable(path)
    for path in [qrels, *labels]:
        if path is not None and len(f"labels:{Path(path).name}") > SOURCE_MAX_LENGTH:
            raise ImportFileError(path, None, _("file name too long to name a judgment source (max %(max)d characters)")
                                  % {"max": SOURCE_MAX_LENGTH - 7})

    collection = Collection.objects.select_for_update().filter(slug=collection_slug).first()
    is_new = collection is None
    if is_new:
        collection = Collection.objects.create(slug=collection_slug, name=collection_slug)
    meter = ByteProgress(sum(p.stat().st_size for p in files), progress, progress_bar)
    job = _Import(collection, is_new, meter)
    try:
        phases = [("corpus", corpus, job.corpus), ("queries", queries, job.queries), ("qrels", qrels, job.qrels),
                  ("run", run, job.run)] + [("labels", Path(p), job.labels) for p in labels]
        for name, path, phase in phases:
            if path is not None:
                started = time.perf_counter()
                phase(Path(path))
                job.seconds[name] = job.seconds.get(name, 0.0) + time.perf_counter() - started
        meter.finish()
    finally:
        meter.close()
    if job.documents.added or job.documents.changed:
        Collection.objects.filter(pk=collection.pk).update(corpus_version=F("corpus_version") + 1)
    return ImportReport(totals=collection_totals(collection), seconds=job.seconds, counts=job.counts())


def check_slug(slug: str) -> None:
    if not isinstance(slug, str) or not SLUG_PATTERN.match(slug) or len(slug) > SLUG_MAX_LENGTH:
        raise InvalidCollectionSlug(
            _("invalid collection name %(name)s: use lower-case letters, digits, - and _ "
              "(starting with a letter or digit, at most %(max)d characters)") % {"name": repr(slug), "max": SLUG_MAX_LENGTH}
        )


class _Import:
    """The state of one run: the id -> pk maps, the buffered writers and per-file duplicate checks."""

    def __init__(self, collection: Collection, is_new: bool, meter: ByteProgress):
        self.collection = collection
        self.meter = meter
        self.documents = EntityTable(Document, collection, is_new_collection=is_new)
        self.queries_table = EntityTable(Query, collection, is_new_collection=is_new)
        self.candidates = CandidateWriter(collection)
        self.seconds: dict[str, float] = {}
        # judgment source -> {(query id, doc id): (grade, "file:line")}: one grade per pair and source.
        self._graded: dict[str, dict[tuple, tuple[int, str]]] = {}

    def counts(self) -> dict[str, int]:
        return {
            "documents_added": self.documents.added, "documents_changed": self.documents.changed,
            "queries_added": self.queries_table.added, "queries_changed": self.queries_table.changed,
            "candidates_added": self.candidates.candidates_added,
            "judgments_added": self.candidates.judgments_added,
            "judgments_changed": self.candidates.judgments_changed,
        }

    # --- phases ------------------------------------------------------------------------------
    def corpus(self, path: Path) -> None:
        for record in read_beir(path, self.meter):
            self.documents.offer(record.external_id, title=record.title, text=record.text,
                                 metadata=record.metadata, path=path, line=record.line)
        self.documents.flush()

    def queries(self, path: Path) -> None:
        for record in read_beir(path, self.meter, with_title=False):
            self.queries_table.offer(record.external_id, title="", text=record.text,
                                     metadata=record.metadata, path=path, line=record.line)
        self.queries_table.flush()

    def qrels(self, path: Path) -> None:
        source = f"qrels:{path.name}"
        for row in read_qrels(path, self.meter):
            query_pk, document_pk = self._known_pair(path, row.line, row.query_id, row.doc_id)
            if not self._first_grade(source, (row.query_id, row.doc_id), row.grade, path, row.line):
                continue
            self.candidates.add(query_pk, document_pk, source_key="qrels", source_value={},
                                judgment_source=source, grade=row.grade)
        self.candidates.flush()

    def run(self, path: Path) -> None:
        listed: dict[tuple[str, str, str], int] = {}
        for row in read_run(path, self.meter):
            query_pk, document_pk = self._known_pair(path, row.line, row.query_id, row.doc_id)
            key = (row.tag, row.query_id, row.doc_id)
            if key in listed:
                raise ImportFileError(path, row.line, _(
                    "document '%(doc)s' listed twice for query '%(query)s' in run '%(tag)s' (first at line %(first)d)"
                ) % {"doc": row.doc_id, "query": row.query_id, "tag": row.tag, "first": listed[key]})
            listed[key] = row.line
            self.candidates.add(query_pk, document_pk, source_key=f"run:{row.tag}",
                                source_value={"rank": row.rank, "score": row.score})
        self.candidates.flush()

    def labels(self, path: Path) -> None:
        source = f"labels:{path.name}"
        pending: list[LabeledRow] = []
        pending_docs = 0
        for row in read_labels(path, self.meter):
            self._offer_texts(path, row)
            pending.append(row)
            pending_docs += len(row.docs)
            if pending_docs >= BATCH_SIZE:
                self._write_labels(path, source, pending)
                pending, pending_docs = [], 0
        self._write_labels(path, source, pending)

    # --- helpers -----------------------------------------------------------------------------
    def _known_pair(self, path: Path, line: int, query_id: str, doc_id: str) -> tuple[int, int]:
        query_pk = self.queries_table.pk(query_id)
        if query_pk is None:
            raise ImportFileError(path, line, _("unknown query id '%(id)s'") % {"id": query_id})
        document_pk = self.documents.pk(doc_id)
        if document_pk is None:
            raise ImportFileError(path, line, _("unknown doc id '%(id)s'") % {"id": doc_id})
        return query_pk, document_pk

    def _first_grade(self, source: str, pair: tuple[str, str], grade: int, path: Path, line: int) -> bool:
        """True the first time a pair is graded by a source; a repeat must agree."""
        graded = self._graded.setdefault(source, {})
        prior = graded.get(pair)
        if prior is None:
            graded[pair] = (grade, f"{path.name}:{line}")
            return True
        if prior[0] != grade:
            raise ImportFileError(path, line, _("query '%(query)s' and doc '%(doc)s' graded %(grade)d here "
                                                "but %(prior)d at %(where)s")
                                  % {"query": pair[0], "doc": pair[1], "grade": grade, "prior": prior[0], "where": prior[1]})
        return False

    def _offer_texts(self, path: Path, row: LabeledRow) -> None:
        if row.query_text is not None:
            self.queries_table.offer(row.query_id, title="", text=row.query_text, metadata=None,
                                     path=path, line=row.line)
        elif not self.queries_table.knows(row.query_id):
            raise ImportFileError(path, row.line, _("unknown query id '%(id)s' (the row gives no query text)")
                                  % {"id": row.query_id})
        for doc in row.docs:
            if doc.text is not None:
                self.documents.offer(doc.doc_id, title=None, text=doc.text, metadata=None, path=path, line=row.line)
            elif not self.documents.knows(doc.doc_id):
                raise ImportFileError(path, row.line, _("unknown doc id '%(id)s' (the row gives no doc text)")
                                      % {"id": doc.doc_id})

    def _write_labels(self, path: Path, source: str, rows: list[LabeledRow]) -> None:
        self.queries_table.flush()
        self.documents.flush()
        for row in rows:
            query_pk = self.queries_table.pk(row.query_id)
            for doc in row.docs:
                document_pk = self.documents.pk(doc.doc_id)
                if doc.label is None:
                    value = {"role": doc.role} if doc.role else {}
                    self.candidates.add(query_pk, document_pk, source_key="labels", source_value=value)
                elif self._first_grade(source, (row.query_id, doc.doc_id), doc.label, path, row.line):
                    self.candidates.add(query_pk, document_pk, source_key="labels", source_value={},
                                        judgment_source=source, grade=doc.label)
        self.candidates.flush()
