"""`manage.py agreement --ratings F.csv [--scale MIN-MAX] --json` and `manage.py agreement COLLECTION --json`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotate.models import Candidate, Collection, Document, Judgment, Query

from .conftest import random_matrix

REPO = Path(__file__).resolve().parents[2]
REQUIRED_KEYS = {
    "n_items", "n_annotators", "n_judgments", "krippendorff_alpha_ordinal", "krippendorff_alpha_interval",
    "krippendorff_alpha_nominal", "fleiss_kappa", "cohen_kappa_quadratic_mean", "percent_agreement",
    "within_one_agreement", "alpha_ordinal_ci95", "pairs",
}


def agreement(*args: str) -> dict:
    out = StringIO()
    call_command("agreement", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def matrix_as_csv(path: Path, matrix: np.ndarray) -> Path:
    """One row per (item, annotator) cell, missing cells as an empty grade."""
    rows = ["item,annotator,grade"]
    for annotator, item in np.ndindex(matrix.shape):
        grade = matrix[annotator, item]
        rows.append(f"item-{item},judge-{annotator},{'' if np.isnan(grade) else int(grade)}")
    return write_csv(path, "\n".join(rows) + "\n")


def test_ratings_file_gives_every_figure_on_the_last_line(tmp_path):
    matrix = random_matrix(4, annotators=5, items=80, missing=0.4)
    result = agreement("--ratings", str(matrix_as_csv(tmp_path / "r.csv", matrix)))
    assert REQUIRED_KEYS <= result.keys()
    present = ~np.isnan(matrix)
    assert result["n_judgments"] == present.sum()
    assert result["n_items"] == present.any(axis=0).sum()
    assert result["n_annotators"] == 5
    for level in ("nominal", "ordinal", "interval"):
        expected = krippendorff.alpha(matrix, level_of_measurement=level, value_domain=[0, 1, 2, 3])
        assert result[f"krippendorff_alpha_{level}"] == pytest.approx(expected, abs=1e-9)
    assert result["fleiss_kappa"] is None  # judges per item vary
    low, high = result["alpha_ordinal_ci95"]
    assert low <= result["krippendorff_alpha_ordinal"] <= high
    assert {pair["annotator_a"] for pair in result["pairs"]} <= {f"judge-{a}" for a in range(5)}


def test_scale_option_checks_data_on_another_ordinal_scale(tmp_path):
    matrix = random_matrix(2, annotators=3, items=40, missing=0.0, scale=(1, 5))
    result = agreement("--ratings", str(matrix_as_csv(tmp_path / "r.csv", matrix)), "--scale", "1-5")
    expected = krippendorff.alpha(matrix, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert result["krippendorff_alpha_ordinal"] == pytest.approx(expected, abs=1e-9)
    assert result["scale"] == "1-5"
    assert result["fleiss_kappa"] is not None


def test_empty_grades_are_missing_and_blank_lines_are_ignored(tmp_path):
    path = write_csv(tmp_path / "r.csv", "item,annotator,grade\nq1,a,3\nq1,b,\n\nq2,a,1\nq2,b,1\nq3,b,2\n")
    result = agreement("--ratings", str(path))
    assert (result["n_judgments"], result["n_items"], result["n_annotators"]) == (4, 3, 2)
    assert result["support"]["krippendorff_alpha"]["n_items"] == 1


def test_header_only_file_has_no_figures(tmp_path):
    result = agreement("--ratings", str(write_csv(tmp_path / "r.csv", "item,annotator,grade\n")))
    assert result["n_judgments"] == 0 and result["krippendorff_alpha_ordinal"] is None


def test_bootstrap_and_seed_options(tmp_path):
    path = matrix_as_csv(tmp_path / "r.csv", random_matrix(1, annotators=4, items=50, missing=0.2))
    assert agreement("--ratings", str(path), "--bootstrap", "0")["alpha_ordinal_ci95"] is None
    first = agreement("--ratings", str(path), "--bootstrap", "200", "--seed", "5")["alpha_ordinal_ci95"]
    assert first == agreement("--ratings", str(path), "--bootstrap", "200", "--seed", "5")["alpha_ordinal_ci95"]


# file content -> expected "<line>: <reason>" after the file name
BAD_FILES = {
    "grade_outside_scale": ("item,annotator,grade\nq1,a,3\nq1,b,4\n", ":3: grade 4 is outside the scale 0-3"),
    "negative_grade": ("item,annotator,grade\nq1,a,-1\n", ":2: grade -1 is outside the scale 0-3"),
    "fractional_grade": ("item,annotator,grade\nq1,a,2.5\n", ":2: grade '2.5' is not an integer"),
    "word_grade": ("item,annotator,grade\nq1,a,high\n", ":2: grade 'high' is not an integer"),
    "repeated_pair": ("item,annotator,grade\nq1,a,1\nq2,a,1\nq1,a,2\n",
                      ":4: repeated (item, annotator) pair ('q1', 'a'), first given on line 2"),
    "repeated_pair_with_missing_grade": ("item,annotator,grade\nq1,a,\nq1,a,2\n", ":3: repeated (item, annotator) pair"),
    "wrong_header": ("item,rater,grade\nq1,a,1\n", ":1: header is 'item,rater,grade'; expected exactly item,annotator,grade"),
    "no_header": ("q1,a,1\nq1,b,2\n", ":1: header is 'q1,a,1'"),
    "too_few_columns": ("item,annotator,grade\nq1,a,1\nq2,a\n", ":3: expected 3 columns (item,annotator,grade), got 2"),
    "too_many_columns": ("item,annotator,grade\nq1,a,1,x\n", ":2: expected 3 columns (item,annotator,grade), got 4"),
    "empty_item": ("item,annotator,grade\n,a,1\n", ":2: empty item id"),
    "empty_annotator": ("item,annotator,grade\nq1, ,1\n", ":2: empty annotator id"),
    "empty_file": ("", ":1: empty file; expected the header item,annotator,grade"),
    "unclosed_quote": ('item,annotator,grade\nq1,a,1\n"q2,a,1\n', ": malformed CSV"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_ratings_file_is_refused_with_line_and_reason(tmp_path, name):
    content, expected = BAD_FILES[name]
    path = write_csv(tmp_path / f"{name}.csv", content)
    with pytest.raises(CommandError) as failure:
        agreement("--ratings", str(path))
    message = str(failure.value)
    assert message.startswith(f"{path}:") and expected in message
    assert "\n" not in message


def test_invalid_utf8_is_refused_at_its_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("item,annotator,grade\nq1,a,1\nq2,Jos\xe9,2\n".encode("latin-1"))
    with pytest.raises(CommandError, match=r"latin1.csv:3: invalid UTF-8 \(byte 0xe9 at column 7\)"):
        agreement("--ratings", str(path))


def test_byte_order_mark_before_the_header_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfitem,annotator,grade\nq1,a,1\nq1,b,1\n")
    assert agreement("--ratings", str(path))["n_judgments"] == 2


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="nope.csv: cannot open"):
        agreement("--ratings", str(tmp_path / "nope.csv"))


@pytest.mark.parametrize("scale", ["3-0", "a-b", "2", "1-1", "0-3-5", ""])
def test_malformed_scale_is_refused(tmp_path, scale):
    path = write_csv(tmp_path / "r.csv", "item,annotator,grade\nq1,a,1\n")
    with pytest.raises(CommandError, match="--scale: scale"):
        agreement("--ratings", str(path), "--scale", scale)


def test_grade_valid_on_one_scale_is_refused_on_another(tmp_path):
    path = write_csv(tmp_path / "r.csv", "item,annotator,grade\nq1,a,0\nq1,b,5\n")
    with pytest.raises(CommandError, match=r"r.csv:2: grade 0 is outside the scale 1-5"):
        agreement("--ratings", str(path), "--scale", "1-5")


def test_needs_exactly_one_source(tmp_path):
    with pytest.raises(CommandError, match="either a COLLECTION or --ratings"):
        agreement()
    path = write_csv(tmp_path / "r.csv", "item,annotator,grade\n")
    with pytest.raises(CommandError, match="either a COLLECTION or --ratings"):
        agreement("demo", "--ratings", str(path))


def test_command_line_bad_file_is_one_error_line_and_a_failing_exit(tmp_path):
    """As scripts call it (one process start: Django's start-up is the slow part, so only the error
    path runs here; the JSON path is covered through call_command above)."""
    bad = write_csv(tmp_path / "bad.csv", "item,annotator,grade\nq1,a,7\n")
    failed = subprocess.run([sys.executable, "manage.py", "agreement", "--ratings", str(bad), "--json"],
                            cwd=REPO, env={**os.environ, "DEBUG": "1"}, capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines() == [f"error: {bad}:2: grade 7 is outside the scale 0-3"]
    assert failed.stdout == ""


# --- the COLLECTION form -------------------------------------------------------------------------

@pytest.fixture
def judged_collection(django_user_model):
    """Three people grade four candidates; a skip, a withdrawn grade and an imported qrels label
    are also stored and must not count as anyone's grade."""
    collection = Collection.objects.create(slug="agree", name="Agreement")
    query = Query.objects.create(collection=collection, external_id="q1", text="q", content_hash="h")
    candidates = []
    for n in range(4):
        document = Document.objects.create(collection=collection, external_id=f"d{n}", text="t", content_hash=f"h{n}")
        candidates.append(Candidate.objects.create(collection=collection, query=query, document=document))
    ann, bob, cat = (django_user_model.objects.create_user(name, password="x") for name in ("ann", "bob", "cat"))
    grades = {ann: [3, 2, 0, 1], bob: [3, 1, 0, None], cat: [2, 2, None, 1]}
    for person, row in grades.items():
        for candidate, grade in zip(candidates, row):
            if grade is not None:
                Judgment.objects.create(collection=collection, candidate=candidate, annotator=person, grade=grade)
    Judgment.objects.create(collection=collection, candidate=candidates[3], annotator=bob, skipped=True, skip_reason="?")
    Judgment.objects.create(collection=collection, candidate=candidates[2], annotator=cat, withdrawn=True)
    Judgment.objects.create(collection=collection, candidate=candidates[0], source="qrels:qrels.tsv", grade=0)
    matrix = np.array([[3, 2, 0, 1], [3, 1, 0, np.nan], [2, 2, np.nan, 1]])
    return collection, matrix


@pytest.mark.django_db
def test_collection_agreement_counts_only_peoples_grades(judged_collection):
    collection, matrix = judged_collection
    result = agreement(collection.slug)
    assert (result["n_judgments"], result["n_items"], result["n_annotators"]) == (10, 4, 3)
    for level in ("nominal", "ordinal", "interval"):
        expected = krippendorff.alpha(matrix, level_of_measurement=level, value_domain=[0, 1, 2, 3])
        assert result[f"krippendorff_alpha_{level}"] == pytest.approx(expected, abs=1e-9)
    assert {(pair["annotator_a"], pair["annotator_b"]) for pair in result["pairs"]} == {
        ("ann", "bob"), ("ann", "cat"), ("bob", "cat")}


@pytest.mark.django_db
def test_unknown_collection_is_refused():
    with pytest.raises(CommandError, match="no collection 'nope'"):
        agreement("nope")


@pytest.mark.django_db
def test_scale_does_not_apply_to_a_collection(judged_collection):
    with pytest.raises(CommandError, match="--scale applies to --ratings only"):
        agreement("agree", "--scale", "1-5")
