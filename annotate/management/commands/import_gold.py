"""`python manage.py import_gold COLLECTION F [--json]`: mark the file's (query_id, doc_id, grade) pairs gold.

F is a CSV with the header `query_id,doc_id,grade` or JSONL objects with those keys (see
annotate/quality/gold.py). A bad file ends with one line naming the file, line and problem, and
nothing is marked.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Collection
from annotate.quality.gold import GoldError, import_gold


class error(CommandError):  # noqa: N801
    """Printed as `error: <file>:<line>: <reason>`."""


class Command(BaseCommand):
    help = "Mark candidates gold with a grade from a CSV (query_id,doc_id,grade) or JSONL file."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="collection slug")
        parser.add_argument("file", help="CSV or JSONL of query_id, doc_id, grade")
        parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")

    def handle(self, *args, collection, file, **options):
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise error(f"no collection {collection!r}")
        try:
            result = import_gold(collection=target, path=file)
        except GoldError as failure:
            raise error(str(failure)) from None
        if options["json"]:
            self.stdout.write(json.dumps({"collection": target.slug, **result.as_json()}))
        else:
            self.stdout.write(f"{target.slug}: {result.marked} candidates marked gold")
