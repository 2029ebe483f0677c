"""`python manage.py import_data COLLECTION [--corpus F] [--queries F] [--qrels F] [--run F]
[--labels F ...] [--clicks F ...] [--json]`: import files into a collection (created if missing),
all or nothing.

`--clicks`: click logs (annotate/clicks/log.py documents the format), taken in after the other
files in the same transaction, so a bad click log undoes the whole command; a log already taken in
(same sha256) is skipped and said so. The click model is refitted once at the end.

A bad file ends the command with one line `error: <file>:<line>: <reason>` and a non-zero exit;
the database is unchanged. `--json` prints the collection's totals as the last line of stdout.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotate.clicks.services import import_click_logs
from annotate.importing import ImportFileError, InvalidCollectionSlug, import_files
from annotate.models import Collection
from annotate.totals import totals_by_collection


class error(CommandError):  # noqa: N801
    """Django prints a failed command as "<class name>: <message>"; this makes that line read
    `error: corpus.jsonl:3: bad JSON (...)`, the one line the design asks for."""


class Command(BaseCommand):
    help = "Import BEIR corpus/queries, qrels, a TREC run and labelled JSONL files into a collection."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug (created if missing)")
        parser.add_argument("--corpus", type=Path, help="BEIR corpus JSONL {_id, title?, text}")
        parser.add_argument("--queries", type=Path, help="BEIR queries JSONL {_id, text}")
        parser.add_argument("--qrels", type=Path, help="qrels: BEIR TSV (query-id corpus-id score) or TREC (qid 0 docid grade)")
        parser.add_argument("--run", type=Path, help="TREC run: qid Q0 docid rank score tag")
        parser.add_argument("--labels", type=Path, nargs="+", action="extend", default=[],
                            help="labelled JSONL (pointwise, pairwise or listwise); repeatable")
        parser.add_argument("--clicks", type=Path, nargs="+", action="extend", default=[],
                            help="click log JSONL {query_id, query?, shown: [{doc_id, position}], clicks?}; repeatable")
        parser.add_argument("--json", action="store_true", help="print the totals as JSON on the last line")

    def handle(self, *args, collection, corpus, queries, qrels, run, labels, clicks, **options):
        if not any([corpus, queries, qrels, run, labels, clicks]):
            raise error("give at least one input: --corpus, --queries, --qrels, --run, --labels or --clicks")
        try:
            with transaction.atomic():
                if any([corpus, queries, qrels, run, labels]):
                    totals = import_files(collection_slug=collection, corpus=corpus, queries=queries, qrels=qrels,
                                          run=run, labels=labels, progress_bar=options["verbosity"] > 0)
                if clicks:
                    totals = self._import_clicks(collection, clicks)
        except (ImportFileError, InvalidCollectionSlug) as failure:
            raise error(str(failure)) from None
        from annotate.judging.priorities import refresh_all
        from annotate.models import Collection

        refresh_all(Collection.objects.get(slug=totals["collection"]))  # the new pairs in the judging order
        if options["json"]:
            self.stdout.write(_dumps(totals))
        else:
            self.stdout.write(
                f"{totals['collection']}: {totals['documents']} documents, {totals['queries']} queries, "
                f"{totals['candidates']} candidates, {totals['judgments']} judgments"
            )


    def _import_clicks(self, slug: str, paths: list[Path]) -> dict:
        target = Collection.objects.filter(slug=slug).first()
        if target is None:
            raise error(f"{slug}: no such collection; import its corpus first (--corpus), then click logs")
        summary = import_click_logs(collection=target, paths=paths)
        for log in summary["logs"]:
            if log["already_imported"]:
                self.stderr.write(f"{log['file']}: already imported; skipped")
            else:
                self.stderr.write(f"{log['file']}: {log['searches']} searches, {log['clicks']} clicks, "
                                  f"{log['new_queries']} new queries, {log['new_candidates']} new candidates")
        self.stderr.write(f"click labels: {summary['click_labels']} of {summary['click_pairs']} pairs"
                          + ("" if summary["position_bias_identified"] is not False else
                             " (every pair was shown at one position only: position bias cannot be separated)"))
        return {"collection": slug, **totals_by_collection([target])[target.pk]}


def _dumps(totals: dict) -> str:
    return json.dumps(totals, ensure_ascii=False)
