"""Prepare a fresh database for the PostgreSQL-restart test: migrate, one collection, annotators.

    DATABASE_URL=postgres://... python -m tests.faults.seed_database QUERIES CANDIDATES K ANNOTATORS

Prints one JSON line: the collection's slug and id, and the annotators' names.
"""
import json
import os
import sys


def main() -> None:
    queries, candidates, k, annotators = (int(v) for v in sys.argv[1:5])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.server_settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotate.models import GuidelineAcknowledgement
    from tests.workbench.factories import make_annotators, make_collection

    collection = make_collection(slug="load", queries=queries, candidates=candidates, k=k)
    users = make_annotators(collection, annotators)
    GuidelineAcknowledgement.objects.bulk_create(
        GuidelineAcknowledgement(user=u, version=collection.guideline_version) for u in users)
    print(json.dumps({"slug": collection.slug, "id": collection.pk, "annotators": [u.username for u in users]}))


if __name__ == "__main__":
    main()
