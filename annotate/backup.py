"""Whole-database backup and restore with PostgreSQL's own tools (pg_dump / pg_restore).

An operator trusts pg_dump: it is consistent (one snapshot, taken while annotators keep grading),
it carries every table — collections, judgments and their revisions, leases, guideline
acknowledgements, adjudications, jobs, users — and it restores with the same server's tools if this
code is gone. Around it we add what pg_dump lacks:

- a manifest beside the dump (FILE.manifest.json): format version, sha256 and size of the dump, the
  applied migrations and row counts, so a copied file is checked before anything is written;
- a restore that refuses a target database that already holds tables (it would collide with the
  collections there) and runs in one transaction (pg_restore --single-transaction --exit-on-error),
  so a failed restore leaves the target exactly as it was.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

from .importing.lines import file_sha256

FORMAT = "relevance-studio-pg-backup"
VERSION = 1
COUNTED = ("annotate_collection", "annotate_judgment", "annotate_judgmentrevision", "annotate_lease",
           "annotate_guidelineacknowledgement", "annotate_adjudication", "auth_user")


class BackupError(Exception):
    """A backup or restore was refused; the message names why."""


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".manifest.json")


def connection_args(conf: dict) -> tuple[list[str], dict]:
    """libpq command-line arguments and env (password) for a Django database settings dict."""
    if not conf["ENGINE"].endswith("postgresql"):
        raise BackupError(f"backups use pg_dump: the database is {conf['ENGINE'].rsplit('.', 1)[-1]}, not PostgreSQL")
    args = ["--dbname", conf["NAME"]]
    if conf.get("HOST"):
        args += ["--host", conf["HOST"]]
    if conf.get("PORT"):
        args += ["--port", str(conf["PORT"])]
    if conf.get("USER"):
        args += ["--username", conf["USER"]]
    env = {**os.environ, "PGPASSWORD": conf["PASSWORD"]} if conf.get("PASSWORD") else dict(os.environ)
    return args, env


def conf_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise BackupError(f"{url!r} is not a postgres:// URL")
    return {"ENGINE": "django.db.backends.postgresql", "NAME": unquote(parsed.path.lstrip("/")),
            "HOST": parsed.hostname or "", "PORT": parsed.port or "", "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or "")}


def _run(command: list[str], env: dict) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def _facts(connection) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations: dict[str, str] = {}
        for app, name in cursor.fetchall():
            migrations[app] = name  # the last applied per app (names sort by number)
        counts = {}
        for table in COUNTED:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 -- fixed table names
            counts[table] = cursor.fetchone()[0]
    return {"migrations": migrations, "counts": counts}


def backup(out: Path, *, connection) -> dict:
    """Dump the database to `out` (pg_dump custom format) and write its manifest; return the manifest."""
    out = Path(out)
    args, env = connection_args(connection.settings_dict)
    partial = out.with_name(out.name + ".partial")
    facts = _facts(connection)
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(partial), *args], env)
    manifest = {"format": FORMAT, "version": VERSION, "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "file": out.name, "bytes": partial.stat().st_size, "sha256": file_sha256(partial), **facts}
    partial.replace(out)  # the dump appears under its name only when complete
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(dump: Path) -> dict:
    """Check the dump against its manifest before anything is written; return the manifest."""
    dump = Path(dump)
    if not dump.is_file():
        raise BackupError(f"{dump}: no such file")
    mpath = manifest_path(dump)
    if not mpath.is_file():
        raise BackupError(f"{mpath.name}: manifest missing (expected beside the dump)")
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError as exc:
        raise BackupError(f"{mpath.name}: not JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{mpath.name}: not a Relevance Studio backup manifest")
    if manifest.get("version") != VERSION:
        raise BackupError(f"{mpath.name}: format version {manifest.get('version')!r}; this code reads {VERSION}")
    size, digest = dump.stat().st_size, file_sha256(dump)
    if size != manifest["bytes"] or digest != manifest["sha256"]:
        raise BackupError(f"{dump.name}: sha256 {digest[:12]}… ({size} bytes) does not match the manifest's "
                          f"{manifest['sha256'][:12]}… ({manifest['bytes']} bytes): the file is damaged or not this backup")
    return manifest


def _existing_tables(conf: dict) -> list[str]:
    args, env = connection_args(conf)
    result = subprocess.run(["psql", "--no-psqlrc", "--tuples-only", "--no-align", *args, "--command",
                             "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"cannot read the target database: {result.stderr.strip()}")
    return result.stdout.split()


def restore(dump: Path, *, target: dict) -> dict:
    """Restore `dump` into the empty database `target` in one transaction; return the manifest."""
    manifest = verify(dump)
    tables = _existing_tables(target)
    if tables:
        has = "a collection table" if "annotate_collection" in tables else f"{len(tables)} tables"
        raise BackupError(f"database {target['NAME']!r} is not empty (it has {has}, e.g. {tables[0]}): restore into a "
                          "new, empty database (createdb NAME), then point DATABASE_URL at it")
    args, env = connection_args(target)
    _run(["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", *args,
          str(dump)], env)
    return manifest
