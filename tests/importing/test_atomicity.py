"""All or nothing: a bad line anywhere, even after thousands of written rows, leaves no trace."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from annotate.importing import ImportFileError, InvalidCollectionSlug, import_files
from annotate.models import Collection

from .conftest import (
    REPO_ROOT,
    args_for,
    database_snapshot,
    import_data,
    write_jsonl,
    write_text,
)

pytestmark = pytest.mark.django_db


def test_a_bad_line_after_several_written_batches_rolls_everything_back(small_collection, tmp_path):
    import_data("small", *args_for(small_collection))
    before = database_snapshot()
    corpus = tmp_path / "big.jsonl"
    rows = [{"_id": f"n{i}", "text": f"passage {i}"} for i in range(5000)]
    write_jsonl(corpus, rows)
    with corpus.open("a") as handle:
        handle.write('{"_id": "n-last", "text": 7}\n')
    qrels = write_text(tmp_path / "q.tsv", "q1 0 n1 2\n")

    with pytest.raises(ImportFileError) as failure:
        import_files(collection_slug="small", corpus=corpus, qrels=qrels)

    assert (failure.value.name, failure.value.line) == ("big.jsonl", 5001)
    assert failure.value.reason == "'text' must be a string, got a number"
    assert str(failure.value) == "big.jsonl:5001: 'text' must be a string, got a number"
    assert database_snapshot() == before


def test_a_failed_import_into_a_new_collection_does_not_create_it(tmp_path):
    labels = write_jsonl(tmp_path / "l.jsonl", [{"query": "q", "doc": "d", "label": 1}, {"query": "q", "doc": "e", "label": 9}])

    with pytest.raises(CommandError, match=r"^l\.jsonl:2: label 9 is outside 0\.\.3$"):
        import_data("fresh", "--labels", str(labels))

    assert not Collection.objects.filter(slug="fresh").exists()


def test_a_missing_file_is_named_before_anything_is_written(small_collection, tmp_path):
    with pytest.raises(CommandError, match=r"nope\.tsv: no such file"):
        import_data("small", "--corpus", str(small_collection["corpus"]), "--qrels", str(tmp_path / "nope.tsv"))
    assert not Collection.objects.exists()


@pytest.mark.parametrize("slug", ["Has Caps", "-dash-first", "", "a/b", "x" * 65])
def test_a_bad_collection_name_is_refused(slug, small_collection):
    with pytest.raises(InvalidCollectionSlug, match="lower-case letters, digits, - and _"):
        import_files(collection_slug=slug, corpus=small_collection["corpus"])
    assert not Collection.objects.exists()


def test_no_input_at_all_is_a_usage_error():
    with pytest.raises(CommandError, match="at least one input"):
        call_command("import_data", "empty")


def test_the_command_line_prints_one_error_line_and_exits_non_zero(tmp_path):
    """Through manage.py itself. A missing file is refused before any table is read, so the
    subprocess needs no migrated database of its own (a bad line is covered by the catalogue)."""
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    corpus = write_text(tmp_path / "corpus.jsonl", '{"_id": "d1", "text": "ok"}\n')

    result = subprocess.run(
        [sys.executable, "manage.py", "import_data", "cli", "--corpus", str(corpus),
         "--qrels", str(tmp_path / "absent.tsv"), "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["error: absent.tsv: no such file"]
    assert result.stdout == ""
