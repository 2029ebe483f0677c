"""backup_database / restore_database round-trip a collection's judgments byte for byte, on real PostgreSQL
with the real pg_dump and pg_restore; a restore never writes into a database that already has data."""
from __future__ import annotations

import json
import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from annotate.judging import assignment
from annotate.judging.services import record_judgment
from annotate.models import GuidelineAcknowledgement, Judgment, JudgmentRevision
from annotate.quality.adjudication import adjudicate

from ..conftest import database_url_for_subprocess
from ..workbench.factories import make_annotators, make_collection

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump backups need PostgreSQL")

# Every table whose rows must come back identical, ordered by primary key.
TABLES = ["annotate_collection", "annotate_membership", "annotate_document", "annotate_query", "annotate_candidate",
          "annotate_judgment", "annotate_judgmentrevision", "annotate_lease", "annotate_guidelineacknowledgement",
          "annotate_adjudication", "auth_user"]


def table_bytes(url: str) -> dict[str, bytes]:
    """Each table as COPY text, rows ordered by id: equal bytes = equal data, column for column."""
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        out = {}
        for table in TABLES:
            with conn.cursor().copy(f'COPY (SELECT * FROM "{table}" ORDER BY id) TO STDOUT') as copy:
                out[table] = b"".join(bytes(block) for block in copy)
        return out


@pytest.fixture
def scratch_database():
    """An empty database beside the test database, dropped afterwards."""
    source = database_url_for_subprocess()
    name = f"scratch_restore_{uuid.uuid4().hex[:8]}"
    admin = source.rsplit("/", 1)[0].replace("postgres://", "postgresql://", 1) + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield source.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def graded_collection(transactional_db, django_user_model):
    """Judgments with revisions (a grade changed twice, a skip), notes with control characters and
    non-Latin text, a live lease, guideline acknowledgements and an adjudication."""
    collection = make_collection(slug="kept", queries=2, candidates=3, k=2)
    first, second = make_annotators(collection, 2)
    staff = django_user_model.objects.create_user("boss", password="pw-123456789", is_staff=True)
    for user in (first, second):
        GuidelineAcknowledgement.objects.create(user=user, version="v1")
    for n, annotator in enumerate((first, second)):
        lease = assignment.next_task(collection=collection, annotator=annotator)
        for i, candidate_id in enumerate(assignment.task_candidate_ids(lease)):
            candidate = collection.candidates.get(pk=candidate_id)
            record_judgment(annotator=annotator, candidate=candidate, grade=(i + n) % 4,
                            note="tab\there, 中文, é\x01", seconds_spent=1.25 + i, idempotency_key=f"k{n}-{i}")
            record_judgment(annotator=annotator, candidate=candidate, grade=(i + n + 1) % 4,
                            note="changed", idempotency_key=f"k{n}-{i}-again")
    adjudicate(candidate=collection.candidates.first(), grade=3, reason="clearly answers it", decided_by=staff)
    assert JudgmentRevision.objects.count() >= 2 * Judgment.objects.count()
    return collection


def test_backup_and_restore_round_trip_every_judgment_and_revision_byte_for_byte(graded_collection, scratch_database,
                                                                                  tmp_path):
    dump = tmp_path / "studio.dump"
    out = StringIO()
    call_command("backup_database", "--out", str(dump), stdout=out)
    manifest = json.loads((tmp_path / "studio.dump.manifest.json").read_text())
    assert manifest["format"] == "relevance-studio-pg-backup" and manifest["version"] == 1
    assert manifest["counts"]["annotate_judgment"] == Judgment.objects.count() > 0
    assert len(manifest["sha256"]) == 64 and "sha256" in out.getvalue()

    call_command("restore_database", str(dump), "--into", scratch_database, stdout=StringIO())

    original, restored = table_bytes(database_url_for_subprocess()), table_bytes(scratch_database)
    for table in TABLES:
        assert restored[table] == original[table], f"{table} differs after restore"
    assert original["annotate_judgmentrevision"] and original["annotate_adjudication"] and original["annotate_lease"]


def test_restore_into_a_database_that_already_has_the_collection_is_refused_and_writes_nothing(
        graded_collection, scratch_database, tmp_path):
    dump = tmp_path / "studio.dump"
    call_command("backup_database", "--out", str(dump), stdout=StringIO())
    call_command("restore_database", str(dump), "--into", scratch_database, stdout=StringIO())
    before = table_bytes(scratch_database)

    with pytest.raises(CommandError, match=r"is not empty \(it has a collection table, e.g. .*restore into a new, empty database"):
        call_command("restore_database", str(dump), "--into", scratch_database, stdout=StringIO())
    assert table_bytes(scratch_database) == before


def test_a_failing_restore_leaves_the_target_empty(graded_collection, scratch_database, tmp_path):
    """pg_restore runs in one transaction: a dump that breaks half-way writes nothing."""
    dump = tmp_path / "studio.dump"
    call_command("backup_database", "--out", str(dump), stdout=StringIO())
    # A dump cut off two thirds in (a full disk during the copy), with a manifest that matches it, so
    # the checksum passes and pg_restore itself fails part-way through.
    data = dump.read_bytes()
    broken = tmp_path / "broken.dump"
    broken.write_bytes(data[: len(data) * 2 // 3])
    manifest = json.loads((tmp_path / "studio.dump.manifest.json").read_text())
    import hashlib

    manifest.update(bytes=len(broken.read_bytes()), sha256=hashlib.sha256(broken.read_bytes()).hexdigest())
    (tmp_path / "broken.dump.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match="pg_restore failed"):
        call_command("restore_database", str(broken), "--into", scratch_database, stdout=StringIO())
    with psycopg.connect(scratch_database.replace("postgres://", "postgresql://", 1)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_a_damaged_dump_is_refused_before_anything_is_written(graded_collection, scratch_database, tmp_path):
    dump = tmp_path / "studio.dump"
    call_command("backup_database", "--out", str(dump), stdout=StringIO())
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    with pytest.raises(CommandError, match=r"studio.dump: sha256 .* does not match the manifest's"):
        call_command("restore_database", str(dump), "--into", scratch_database, stdout=StringIO())


def test_backup_refuses_to_overwrite_and_names_a_missing_manifest(graded_collection, tmp_path):
    dump = tmp_path / "studio.dump"
    call_command("backup_database", "--out", str(dump), stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("backup_database", "--out", str(dump), stdout=StringIO())
    (tmp_path / "studio.dump.manifest.json").unlink()
    with pytest.raises(CommandError, match="manifest missing"):
        call_command("restore_database", str(dump), "--into", "postgres://postgres@127.0.0.1/none", stdout=StringIO())
