"""`python manage.py restore_database FILE [--into postgres://...]` — checks FILE against its manifest,
refuses a target database that already has tables, and restores in one transaction (all or nothing).
The target defaults to the configured database. See annotate/backup.py."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from annotate.backup import BackupError, conf_from_url, restore


class Command(BaseCommand):
    help = "Restore a backup_database dump into an empty PostgreSQL database."

    def add_arguments(self, parser):
        parser.add_argument("dump", type=Path)
        parser.add_argument("--into", help="postgres:// URL of the empty target database (default: DATABASE_URL)")

    def handle(self, *args, dump: Path, into: str | None, **options):
        try:
            target = conf_from_url(into) if into else connection.settings_dict
            manifest = restore(dump, target=target)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        counts = manifest["counts"]
        self.stdout.write(f"restored {dump} into {target['NAME']}: {counts['annotate_collection']} collections, "
                          f"{counts['annotate_judgment']} judgments, {counts['annotate_judgmentrevision']} revisions")
