"""Taking a click log in, and turning the collection's clicks into click labels.

`import_click_log` reads the whole file first (every line checked, documents looked up, new
queries named), and only then writes, in one transaction: new queries, new candidates (source
"clicks", with the best position the pair was shown at), the counts added to each (candidate,
position) cell, and the log's record. A bad line leaves the collection as it was. A file already
taken in (same sha256) is not counted twice: the call returns the earlier record and writes nothing.

`fit_click_labels` fits the position-based model on every count of the collection and writes one
label per pair with enough evidence -- a Judgment from the source "clicks", as an imported label
is -- so the annotator model gives clicks a confusion of their own against people's grades and
weighs them as much as they agree with people (annotate/quality/annotator_model.py). The grade cuts
the pairs' attractiveness at the shares people's grades have in the collection (equal shares
before anyone has graded), so "3" means "as often a top grade as people give one". A refit that
moves a pair's grade updates its judgment with a revision, as a re-import does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from annotate.grades import GRADES
from annotate.importing.errors import ImportFileError
from annotate.importing.lines import file_sha256
from annotate.models import (
    CLICK_SOURCE,
    Candidate,
    ClickCount,
    ClickLog,
    Collection,
    Document,
    Judgment,
    Query,
)
from annotate.sources import write_source_grades

from .click_model import PositionBasedModel, fit_position_based_model, ordinal_grades
from .log import ClickCounts, read_click_log

# A pair gets a click label once its impressions, weighted by how often their positions are
# examined, add up to this: about two looks. Fewer leaves its attractiveness at the prior's mean.
MIN_EXAMINATIONS = 2.0
MIN_PEOPLE_GRADES_FOR_SHARES = 30


@dataclass(frozen=True)
class ClickImport:
    log: ClickLog
    already_imported: bool
    new_queries: int
    new_candidates: int
    cells: int


@dataclass(frozen=True)
class ClickFit:
    pairs: int                 # pairs with counts
    labelled: int              # pairs with enough evidence for a click label
    added: int
    changed: int
    model: PositionBasedModel | None


def import_click_log(*, collection: Collection, path: Path, imported_by=None, fit: bool = True) -> ClickImport:
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(path, None, _("no such file"))
    sha256 = file_sha256(path)
    earlier = ClickLog.objects.filter(collection=collection, sha256=sha256).first()
    if earlier is not None:
        return ClickImport(log=earlier, already_imported=True, new_queries=0, new_candidates=0, cells=0)

    documents = dict(Document.objects.filter(collection=collection).values_list("external_id", "pk"))
    queries = dict(Query.objects.filter(collection=collection).values_list("external_id", "pk"))
    new_texts: dict[str, str] = {}

    def named(searches):
        """Each search, once its query is known or named by the log (the first text wins)."""
        for search in searches:
            if search.query_id not in queries and search.query_id not in new_texts:
                if search.query is None:
                    raise ImportFileError(path, search.line, _(
                        "query %(query)r is not in the collection: give its text in \"query\"")
                        % {"query": search.query_id})
                new_texts[search.query_id] = search.query
            yield search

    counts = ClickCounts().add(named(read_click_log(path, known_document=documents.__contains__)))
    cells = counts.cells

    with transaction.atomic():
        Collection.objects.select_for_update().get(pk=collection.pk)  # one click import at a time
        if ClickLog.objects.filter(collection=collection, sha256=sha256).exists():  # lost a race
            return ClickImport(log=ClickLog.objects.get(collection=collection, sha256=sha256), already_imported=True,
                               new_queries=0, new_candidates=0, cells=0)
        for external_id, text in new_texts.items():
            queries[external_id] = Query.objects.create(collection=collection, external_id=external_id, text=text).pk
        pair_of = {}
        best: dict[tuple[int, int], list] = {}
        for (query_id, doc_id, position), (shown, clicked, _dwell) in cells.items():
            pair = (queries[query_id], documents[doc_id])
            pair_of[(query_id, doc_id)] = pair
            entry = best.setdefault(pair, [position, 0, 0])
            entry[0] = min(entry[0], position)
            entry[1] += shown
            entry[2] += clicked
        sources = {pair: {CLICK_SOURCE: {"rank": top, "score": round(clicked / shown, 6)}}
                   for pair, (top, shown, clicked) in best.items()}
        added = Candidate.objects.add_proposed(collection_id=collection.pk, query_pks=set(p[0] for p in best),
                                               sources=sources, new=list(best))
        candidate_of = {(q, d): pk for pk, q, d in Candidate.objects.filter(
            query_id__in={p[0] for p in best}).values_list("pk", "query_id", "document_id") if (q, d) in best}
        _add_counts(cells, pair_of, candidate_of)
        log = ClickLog.objects.create(collection=collection, name=path.name[:255], sha256=sha256,
                                      searches=counts.searches, clicks=counts.clicks, imported_by=imported_by)
    if fit:
        fit_click_labels(collection=collection)
    return ClickImport(log=log, already_imported=False, new_queries=len(new_texts), new_candidates=added,
                       cells=len(cells))


def import_click_logs(*, collection: Collection, paths, imported_by=None) -> dict:
    """Take several logs in (each once), then fit once: what an import job and `import_data
    --clicks` do. Returns a summary for the job's result and the command's output."""
    logs = []
    for path in paths:
        result = import_click_log(collection=collection, path=Path(path), imported_by=imported_by, fit=False)
        logs.append({"file": Path(path).name, "already_imported": result.already_imported,
                     "searches": result.log.searches, "clicks": result.log.clicks,
                     "new_queries": result.new_queries, "new_candidates": result.new_candidates})
    fit = fit_click_labels(collection=collection)
    return {"logs": logs, "click_labels": fit.labelled, "click_pairs": fit.pairs,
            "position_bias_identified": None if fit.model is None else fit.model.identified}


def _add_counts(cells, pair_of, candidate_of) -> None:
    wanted = {(candidate_of[pair_of[(q, d)]], position): values for (q, d, position), values in cells.items()}
    existing = {(row.candidate_id, row.position): row for row in ClickCount.objects.filter(
        candidate_id__in={c for c, _ in wanted})}
    new, changed = [], []
    for key, (shown, clicked, dwell) in wanted.items():
        row = existing.get(key)
        if row is None:
            new.append(ClickCount(candidate_id=key[0], position=key[1], impressions=shown, clicks=clicked,
                                  dwell_seconds=dwell))
        else:
            row.impressions += shown
            row.clicks += clicked
            row.dwell_seconds += dwell
            changed.append(row)
    ClickCount.objects.bulk_create(new, batch_size=1000)
    ClickCount.objects.bulk_update(changed, ["impressions", "clicks", "dwell_seconds"], batch_size=1000)


def fit_click_labels(*, collection: Collection) -> ClickFit:
    rows = list(ClickCount.objects.filter(candidate__collection=collection).values_list(
        "candidate_id", "position", "impressions", "clicks"))
    if not rows:
        return ClickFit(pairs=0, labelled=0, added=0, changed=0, model=None)
    candidate_ids = sorted({r[0] for r in rows})
    index = {pk: i for i, pk in enumerate(candidate_ids)}
    counts = np.array([(index[c], p, n, k) for c, p, n, k in rows], dtype=np.int64)
    model = fit_position_based_model(counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3],
                                     n_pairs=len(candidate_ids))
    grades = ordinal_grades(model.attractiveness, shares=people_grade_shares(collection))
    already = set(Judgment.objects.filter(collection=collection, annotator__isnull=True, source=CLICK_SOURCE)
                  .values_list("candidate_id", flat=True))
    # A pair gets its first click label once it has the evidence; a labelled pair keeps being revised.
    labels = {candidate: int(grades[i]) for i, candidate in enumerate(candidate_ids)
              if candidate in already or model.examinations[i] >= MIN_EXAMINATIONS}
    added, changed = write_source_grades(collection=collection, source=CLICK_SOURCE, grades=labels,
                                         reason="click model refit")
    return ClickFit(pairs=len(candidate_ids), labelled=len(labels), added=added, changed=changed, model=model)


def people_grade_shares(collection: Collection) -> np.ndarray | None:
    """The share of each grade among people's grades in the collection; None (equal shares) below
    MIN_PEOPLE_GRADES_FOR_SHARES grades."""
    counts = np.zeros(len(GRADES))
    for grade, n in (Judgment.objects.people_grades().filter(collection=collection).order_by()
                     .values_list("grade").annotate(n=Count("pk"))):
        counts[grade - GRADES[0]] = n
    if counts.sum() < MIN_PEOPLE_GRADES_FOR_SHARES:
        return None
    return counts / counts.sum()
