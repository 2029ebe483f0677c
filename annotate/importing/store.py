"""The database side of an import: buffered, batched writes inside the import's one transaction.

`EntityTable` upserts documents or queries by external id; `CandidateWriter` upserts candidates
(merging their per-source entries) and the judgments of named non-human sources, recording a
JudgmentRevision when a re-import changes a grade. Nothing is ever deleted. Reads are one query
per batch, never one per row; the id -> pk map of a collection is held in memory.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Candidate, Collection, Document, Judgment, JudgmentRevision, Query
from ..splits import split_for
from .errors import ImportFileError
from .fastinsert import insert_rows

BATCH_SIZE = 2000


def content_hash(title: str, text: str) -> str:
    """sha256 of title and text, separated so ("ab", "c") and ("a", "bc") differ."""
    return hashlib.sha256(f"{title}\x1f{text}".encode("utf-8")).hexdigest()


def _text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


@dataclass(slots=True)
class _Update:
    external_id: str
    title: str | None  # None: the row had no title (labels); keep the stored one
    text: str
    metadata: dict | None  # None: keep the stored metadata
    content_hash: str | None


class EntityTable:
    """Documents or queries of one collection, by external id."""

    def __init__(self, model: type[Document] | type[Query], collection: Collection, *, is_new_collection: bool):
        self.model = model
        self.kind = "document" if model is Document else "query"
        self.collection = collection
        self.added = 0
        self.changed = 0
        # external id -> [pk, content hash] of what is in the database (this import's writes included).
        self._stored: dict[str, list] | None = {} if is_new_collection else None
        # external id -> (content hash or None, text digest, "file:line") of its first row in this import.
        self._seen: dict[str, tuple[str | None, bytes, str]] = {}
        self._creates: list[tuple] = []  # column values, in the order of self._columns
        self._updates: list[_Update] = []

    @property
    def stored(self) -> dict[str, list]:
        if self._stored is None:
            rows = (self.model.objects.filter(collection=self.collection)
                    .values_list("external_id", "pk", "content_hash").iterator(chunk_size=20000))
            self._stored = {ext: [pk, digest] for ext, pk, digest in rows}
        return self._stored

    def knows(self, external_id: str) -> bool:
        return external_id in self._seen or external_id in self.stored

    def pk(self, external_id: str) -> int | None:
        """The pk of a stored row; call flush() first for rows offered in this import."""
        entry = self.stored.get(external_id)
        return entry[0] if entry else None

    def _different_text(self, external_id: str, where: str) -> str:
        values = {"id": external_id, "where": where}
        if self.kind == "document":
            return _("document '%(id)s' has a different text than at %(where)s") % values
        return _("query '%(id)s' has a different text than at %(where)s") % values

    def offer(self, external_id: str, *, title: str | None, text: str, metadata: dict | None,
              path: Path, line: int) -> None:
        """Queue a row for creation or update. `title=None` means the row carried text only (labels):
        it is compared and updated on its text, and the stored title is kept."""
        chash = content_hash(title, text) if title is not None else None
        digest = _text_digest(text)
        prior = self._seen.get(external_id)
        if prior is not None:
            prior_hash, prior_digest, where = prior
            same = chash == prior_hash if chash is not None and prior_hash is not None else digest == prior_digest
            if not same:
                raise ImportFileError(path, line, self._different_text(external_id, where))
            return
        self._seen[external_id] = (chash, digest, f"{path.name}:{line}")
        if external_id in self.stored:
            self._updates.append(_Update(external_id, title, text, metadata, chash))
        else:
            self._creates.append(self._new(external_id, title or "", text, metadata or {}, chash))
        if len(self._creates) + len(self._updates) >= BATCH_SIZE:
            self.flush()

    @property
    def _columns(self) -> tuple[str, ...]:
        if self.model is Document:
            return ("collection_id", "external_id", "title", "text", "metadata", "content_hash")
        return ("collection_id", "external_id", "text", "metadata", "content_hash", "split")

    def _new(self, external_id: str, title: str, text: str, metadata: dict, chash: str | None) -> tuple:
        chash = chash or content_hash(title, text)
        if self.model is Document:
            return (self.collection.pk, external_id, title, text, metadata, chash)
        return (self.collection.pk, external_id, text, metadata, chash, split_for(text))

    def flush(self) -> None:
        if self._creates:
            self._insert(self._creates)
            self.added += len(self._creates)
            self._creates = []
        if self._updates:
            self._apply_updates(self._updates)
            self._updates = []

    def _insert(self, rows: list[tuple]) -> None:
        columns = self._columns
        ext_at, hash_at = columns.index("external_id"), columns.index("content_hash")
        returned = insert_rows(self.model, columns, rows, returning=("external_id",))
        if returned is None:  # a backend that cannot return ids from a bulk insert
            returned = self.model.objects.filter(
                collection=self.collection, external_id__in=[row[ext_at] for row in rows]
            ).values_list("pk", "external_id")
        pks = {ext: pk for pk, ext in returned}
        for row in rows:
            self.stored[row[ext_at]] = [pks[row[ext_at]], row[hash_at]]

    def _apply_updates(self, updates: list[_Update]) -> None:
        changed = [u for u in updates if u.content_hash is not None and u.content_hash != self.stored[u.external_id][1]]
        text_only = [u for u in updates if u.content_hash is None
                     and content_hash("", u.text) != self.stored[u.external_id][1]]
        if text_only:
            # A labels row names a document by id and text only: compare texts, keep the stored title.
            current = self._titles_and_texts([u.external_id for u in text_only])
            for update in text_only:
                title, text = current[update.external_id]
                if text != update.text:
                    update.title, update.content_hash = title, content_hash(title, update.text)
                    changed.append(update)
        if not changed:
            return
        now = timezone.now()
        with_metadata, without_metadata = [], []
        for update in changed:
            row = self.model(pk=self.stored[update.external_id][0], text=update.text,
                             content_hash=update.content_hash, updated_at=now)
            if self.model is Document:
                row.title = update.title
            if update.metadata is not None:
                row.metadata = update.metadata
                with_metadata.append(row)
            else:
                without_metadata.append(row)
            self.stored[update.external_id][1] = update.content_hash
        fields = ["text", "content_hash", "updated_at"] + (["title"] if self.model is Document else [])
        if with_metadata:
            self.model.objects.bulk_update(with_metadata, fields + ["metadata"], batch_size=500)
        if without_metadata:
            self.model.objects.bulk_update(without_metadata, fields, batch_size=500)
        self.changed += len(changed)

    def _titles_and_texts(self, external_ids: list[str]) -> dict[str, tuple[str, str]]:
        rows = self.model.objects.filter(collection=self.collection, external_id__in=external_ids)
        if self.model is Document:
            return {ext: (title, text) for ext, title, text in rows.values_list("external_id", "title", "text")}
        return {ext: ("", text) for ext, text in rows.values_list("external_id", "text")}


@dataclass(slots=True)
class _PairOp:
    query_pk: int
    document_pk: int
    source_key: str
    source_value: dict
    judgment_source: str | None
    grade: int | None


def merge_source(old: dict | None, new: dict) -> dict:
    """One source's entry on a candidate, updated by a new row; a pairwise document that was the
    positive in one pair and the negative in another gets the role "both"."""
    if not old:
        return dict(new)
    merged = {**old, **new}
    if "role" in old and "role" in new and old["role"] != new["role"]:
        merged["role"] = "both"
    return merged


class CandidateWriter:
    """Candidates (query, document) with per-source entries, and imported judgments on them."""

    def __init__(self, collection: Collection):
        self.collection = collection
        self.candidates_added = 0
        self.judgments_added = 0
        self.judgments_changed = 0
        self._ops: list[_PairOp] = []

    def add(self, query_pk: int, document_pk: int, *, source_key: str, source_value: dict,
            judgment_source: str | None = None, grade: int | None = None) -> None:
        self._ops.append(_PairOp(query_pk, document_pk, source_key, source_value, judgment_source, grade))
        if len(self._ops) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._ops:
            return
        ops, self._ops = self._ops, []
        candidates, created = self._upsert_candidates(ops)
        self._upsert_judgments(ops, candidates, created)

    def _upsert_candidates(self, ops: list[_PairOp]) -> tuple[dict[tuple[int, int], int], set[int]]:
        """Create or update the batch's candidates; return pk by pair and the pks created now."""
        pairs = {(op.query_pk, op.document_pk) for op in ops}
        existing = {
            (q, d): (pk, sources)
            for pk, q, d, sources in Candidate.objects.filter(
                query_id__in={q for q, _ in pairs}, document_id__in={d for _, d in pairs}
            ).values_list("pk", "query_id", "document_id", "sources")
            if (q, d) in pairs
        }
        sources_by_pair = {pair: dict(existing[pair][1]) for pair in existing}
        for op in ops:
            sources = sources_by_pair.setdefault((op.query_pk, op.document_pk), {})
            sources[op.source_key] = merge_source(sources.get(op.source_key), op.source_value)

        pks = {pair: entry[0] for pair, entry in existing.items()}
        changed = [Candidate(pk=pk, sources=sources_by_pair[pair]) for pair, (pk, old) in existing.items()
                   if sources_by_pair[pair] != old]
        if changed:
            Candidate.objects.bulk_update(changed, ["sources"], batch_size=500)
        new = [(self.collection.pk, q, d, sources_by_pair[(q, d)]) for (q, d) in sources_by_pair if (q, d) not in existing]
        if new:
            returned = insert_rows(Candidate, ("collection_id", "query_id", "document_id", "sources"), new,
                                   returning=("query_id", "document_id"))
            if returned is None:  # a backend that cannot return ids from a bulk insert
                returned = self._lookup({(q, d) for _, q, d, _ in new})
            pks.update({(q, d): pk for pk, q, d in returned})
            self.candidates_added += len(new)
        if changed or new:  # new pairs or ranks move the judging order of their queries
            Query.objects.filter(pk__in={q for q, _ in pairs}, order_stale=False).update(order_stale=True)
        return pks, {pk for pair, pk in pks.items() if pair not in existing}

    def _lookup(self, wanted: set[tuple[int, int]]) -> list[tuple[int, int, int]]:
        rows = Candidate.objects.filter(query_id__in={q for q, _ in wanted}, document_id__in={d for _, d in wanted})
        return [(pk, q, d) for pk, q, d in rows.values_list("pk", "query_id", "document_id") if (q, d) in wanted]

    def _upsert_judgments(self, ops: list[_PairOp], candidates: dict[tuple[int, int], int], created: set[int]) -> None:
        grades: dict[tuple[int, str], int] = {}
        for op in ops:
            if op.judgment_source is not None:
                grades[(candidates[(op.query_pk, op.document_pk)], op.judgment_source)] = op.grade
        if not grades:
            return
        # A candidate created in this batch has no judgments yet: look up only the older ones.
        older = {c for c, _ in grades if c not in created}
        existing = {} if not older else {
            (candidate, source): (pk, grade, skipped)
            for pk, candidate, source, grade, skipped in Judgment.objects.filter(
                candidate_id__in=older, annotator__isnull=True, source__in={s for _, s in grades}
            ).values_list("pk", "candidate_id", "source", "grade", "skipped")
        }
        now = timezone.now()
        new, changed, revisions = [], [], []
        for (candidate, source), grade in grades.items():
            if (candidate, source) not in existing:
                new.append((self.collection.pk, candidate, source, grade))
                continue
            pk, old_grade, old_skipped = existing[(candidate, source)]
            if old_grade == grade and not old_skipped:
                continue
            changed.append(Judgment(pk=pk, grade=grade, skipped=False, withdrawn=False, updated_at=now))
            revisions.append(JudgmentRevision(
                judgment_id=pk, changed_by_source=source, old_grade=old_grade, new_grade=grade,
                old_skipped=old_skipped, new_skipped=False, reason="re-import",
            ))
        if new:
            insert_rows(Judgment, ("collection_id", "candidate_id", "source", "grade"), new)
            self.judgments_added += len(new)
        if changed:
            Judgment.objects.bulk_update(changed, ["grade", "skipped", "withdrawn", "updated_at"], batch_size=500)
            JudgmentRevision.objects.bulk_create(revisions, batch_size=BATCH_SIZE)
            self.judgments_changed += len(changed)
