"""`python manage.py backup_database --out FILE` — pg_dump of the whole database plus FILE.manifest.json
(format version, sha256, migrations, row counts). See annotate/backup.py."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from annotate.backup import BackupError, backup, manifest_path


class Command(BaseCommand):
    help = "Dump the database (pg_dump custom format) with a manifest holding its sha256."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path, help="the dump file to write")

    def handle(self, *args, out: Path, **options):
        if out.exists():
            raise CommandError(f"{out}: already exists; choose a new file name")
        try:
            manifest = backup(out, connection=connection)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        counts = manifest["counts"]
        self.stdout.write(f"{out} ({manifest['bytes']} bytes, sha256 {manifest['sha256']}), manifest "
                          f"{manifest_path(out).name}: {counts['annotate_collection']} collections, "
                          f"{counts['annotate_judgment']} judgments, {counts['annotate_judgmentrevision']} revisions")
