"""The bad-input catalogue: every malformed file in files/ is refused with its file, line and reason.

Each case runs `import_data` with the valid ok.* files alongside (so rows are written before the
bad line is reached) into a collection that already holds data, and into a new one: the command
fails, and the database is exactly as before — the old collection's rows untouched, the new
collection never created. Add a file here for every new importer error.
"""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Collection

from ..importing.conftest import database_snapshot

FILES = Path(__file__).parent / "files"
CONTEXT = ["--corpus", str(FILES / "ok.corpus.jsonl"), "--queries", str(FILES / "ok.queries.jsonl")]

# file -> (option, expected message: "<file>:<line>: <reason>" or "<file>: <reason>")
CATALOGUE = {
    "corpus.bad_json.jsonl": ("--corpus", "corpus.bad_json.jsonl:2: bad JSON"),
    "corpus.not_an_object.jsonl": ("--corpus", "corpus.not_an_object.jsonl:1: expected a JSON object, got an array"),
    "corpus.missing_id.jsonl": ("--corpus", "corpus.missing_id.jsonl:1: missing field '_id'"),
    "corpus.missing_text.jsonl": ("--corpus", "corpus.missing_text.jsonl:1: missing field 'text'"),
    "corpus.text_not_string.jsonl": ("--corpus", "corpus.text_not_string.jsonl:1: 'text' must be a string, got a number"),
    "corpus.id_is_float.jsonl": ("--corpus", "corpus.id_is_float.jsonl:1: '_id' must be a string, got a number"),
    "corpus.same_id_two_texts.jsonl": ("--corpus", "corpus.same_id_two_texts.jsonl:3: document 'd1' has a different text than at corpus.same_id_two_texts.jsonl:1"),
    "corpus.invalid_utf8.jsonl": ("--corpus", "corpus.invalid_utf8.jsonl:2: invalid UTF-8 (byte 0xe9 at column 27)"),
    "corpus.empty.jsonl": ("--corpus", "corpus.empty.jsonl: empty file"),
    "corpus.blank_lines_only.jsonl": ("--corpus", "corpus.blank_lines_only.jsonl: empty file"),
    "queries.text_null.jsonl": ("--queries", "queries.text_null.jsonl:1: 'text' must be a string, got null"),
    "qrels.unknown_doc.tsv": ("--qrels", "qrels.unknown_doc.tsv:3: unknown doc id 'nope'"),
    "qrels.unknown_query.tsv": ("--qrels", "qrels.unknown_query.tsv:2: unknown query id 'qx'"),
    "qrels.grade_4.tsv": ("--qrels", "qrels.grade_4.tsv:2: grade 4 is outside 0..3"),
    "qrels.grade_negative.trec": ("--qrels", "qrels.grade_negative.trec:1: grade -1 is outside 0..3"),
    "qrels.grade_not_int.tsv": ("--qrels", "qrels.grade_not_int.tsv:2: grade '2.5' is not an integer"),
    "qrels.bad_header.tsv": ("--qrels", "qrels.bad_header.tsv:1: bad header: expected 'query-id corpus-id score'"),
    "qrels.wrong_columns.tsv": ("--qrels", "qrels.wrong_columns.tsv:3: expected 3 columns (query-id corpus-id score), got 2"),
    "qrels.two_grades.trec": ("--qrels", "qrels.two_grades.trec:2: query 'q1' and doc 'd1' graded 2 here but 1 at qrels.two_grades.trec:1"),
    "qrels.header_only.tsv": ("--qrels", "qrels.header_only.tsv: empty file"),
    "qrels.invalid_utf8.tsv": ("--qrels", "qrels.invalid_utf8.tsv:2: invalid UTF-8"),
    "run.wrong_columns.trec": ("--run", "run.wrong_columns.trec:1: expected 6 columns (qid Q0 docid rank score tag), got 5"),
    "run.rank_not_int.trec": ("--run", "run.rank_not_int.trec:1: rank 'first' is not an integer"),
    "run.score_not_number.trec": ("--run", "run.score_not_number.trec:1: score 'high' is not a number"),
    "run.score_nan.trec": ("--run", "run.score_nan.trec:1: score 'nan' is not a finite number"),
    "run.unknown_doc.trec": ("--run", "run.unknown_doc.trec:1: unknown doc id 'd9'"),
    "run.same_doc_twice.trec": ("--run", "run.same_doc_twice.trec:2: document 'd1' listed twice for query 'q1' in run 'bm25' (first at line 1)"),
    "labels.unknown_format.jsonl": ("--labels", "labels.unknown_format.jsonl:1: unknown row format"),
    "labels.pointwise_missing_label.jsonl": ("--labels", "labels.pointwise_missing_label.jsonl:1: missing field 'label'"),
    "labels.pointwise_label_string.jsonl": ("--labels", "labels.pointwise_label_string.jsonl:1: 'label' must be an integer, got a string"),
    "labels.pointwise_label_bool.jsonl": ("--labels", "labels.pointwise_label_bool.jsonl:1: 'label' must be an integer, got a boolean"),
    "labels.pointwise_label_5.jsonl": ("--labels", "labels.pointwise_label_5.jsonl:1: label 5 is outside 0..3"),
    "labels.pointwise_missing_query.jsonl": ("--labels", "labels.pointwise_missing_query.jsonl:1: missing field 'query'"),
    "labels.pairwise_negative_number.jsonl": ("--labels", "labels.pairwise_negative_number.jsonl:1: 'negative' must be a string, got a number"),
    "labels.pairwise_missing_negative.jsonl": ("--labels", "labels.pairwise_missing_negative.jsonl:1: missing field 'negative'"),
    "labels.listwise_candidates_not_list.jsonl": ("--labels", "labels.listwise_candidates_not_list.jsonl:1: 'candidates' must be an array, got an object"),
    "labels.listwise_label_out_of_range.jsonl": ("--labels", "labels.listwise_label_out_of_range.jsonl:1: candidates[1].label -2 is outside 0..3"),
    "labels.same_id_two_texts.jsonl": ("--labels", "labels.same_id_two_texts.jsonl:2: query 'qz' has a different text than at labels.same_id_two_texts.jsonl:1"),
    "labels.unknown_query_id.jsonl": ("--labels", "labels.unknown_query_id.jsonl:1: unknown query id 'qx' (the row gives no query text)"),
    "labels.two_labels_for_one_pair.jsonl": ("--labels", "labels.two_labels_for_one_pair.jsonl:2: query 'q-"),
    "labels.nan.jsonl": ("--labels", "labels.nan.jsonl:1: bad JSON (NaN is not valid JSON)"),
    "labels.invalid_utf8.jsonl": ("--labels", "labels.invalid_utf8.jsonl:1: invalid UTF-8 (byte 0xc3 at column 24)"),
    "corpus.nul_in_text.jsonl": ("--corpus", "corpus.nul_in_text.jsonl:2: contains a NUL character (\\u0000), which cannot be stored"),
    "queries.raw_nul_byte.jsonl": ("--queries", "queries.raw_nul_byte.jsonl:1: NUL character in the line"),
    "corpus.text_is_object.jsonl": ("--corpus", "corpus.text_is_object.jsonl:1: 'text' must be a string, got an object"),
    "queries.id_is_list.jsonl": ("--queries", "queries.id_is_list.jsonl:1: '_id' must be a string, got an array"),
    "corpus.id_too_long.jsonl": ("--corpus", "corpus.id_too_long.jsonl:1: '_id' is longer than 255 characters"),
    # json's message ends in "at": "starting at column 23", not "starting at at column 23".
    "corpus.unterminated_string.jsonl": ("--corpus", "corpus.unterminated_string.jsonl:2: bad JSON (Unterminated string starting at column 23)"),
    "corpus.not_json_lines.jsonl": ("--corpus", "corpus.not_json_lines.jsonl:1: bad JSON (Expecting value at column 1)"),
    "queries.invalid_utf8.jsonl": ("--queries", "queries.invalid_utf8.jsonl:1: invalid UTF-8 (byte 0xe9 at column 27)"),
    "run.invalid_utf8.trec": ("--run", "run.invalid_utf8.trec:1: invalid UTF-8 (byte 0xff at column 18)"),
    "run.unknown_query.trec": ("--run", "run.unknown_query.trec:1: unknown query id 'qx'"),
    "qrels.grade_huge.tsv": ("--qrels", "qrels.grade_huge.tsv:2: grade 99999999999999999999 is outside 0..3"),
    "labels.pairwise_positive_null.jsonl": ("--labels", "labels.pairwise_positive_null.jsonl:1: 'positive' must be a string, got null"),
    "labels.label_is_float.jsonl": ("--labels", "labels.label_is_float.jsonl:1: 'label' must be an integer, got a number"),
}


def run_import(collection: str, *args: str) -> None:
    call_command("import_data", collection, *args, stdout=StringIO(), stderr=StringIO())


def test_every_file_in_the_catalogue_has_an_expected_message():
    on_disk = {path.name for path in FILES.iterdir() if not path.name.startswith("ok.")}
    assert on_disk == set(CATALOGUE)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_a_malformed_file_is_refused_and_nothing_is_written(name):
    option, expected = CATALOGUE[name]
    run_import("existing", *CONTEXT, "--qrels", str(FILES / "ok.qrels.tsv"))
    before = database_snapshot()
    context = [] if option in ("--corpus", "--queries") else CONTEXT

    for collection in ("existing", "fresh"):
        with pytest.raises(CommandError) as failure:
            run_import(collection, *context, option, str(FILES / name))
        assert str(failure.value).startswith(expected), str(failure.value)

    assert database_snapshot() == before
    assert not Collection.objects.filter(slug="fresh").exists()


@pytest.mark.django_db
def test_a_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(CommandError, match=r"^missing\.jsonl: no such file$"):
        run_import("existing", "--corpus", str(tmp_path / "missing.jsonl"))
