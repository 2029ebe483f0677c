"""Acceptance on the shared real datasets: trec-dl19 (with its BM25 run) and kuake-qtr-train."""
from __future__ import annotations

import time

import pytest

from .conftest import import_data

pytestmark = pytest.mark.django_db


def beir_args(folder, *, run: bool = False) -> list[str]:
    args = ["--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
            "--qrels", str(folder / "qrels.tsv")]
    return args + (["--run", str(folder / "run.bm25.trec")] if run else [])


def test_trec_dl19_with_its_bm25_run_imports_and_reimports_to_the_same_totals(datasets):
    args = beir_args(datasets / "trec-dl19", run=True)
    expected = {"collection": "dl19", "documents": 4297, "queries": 43, "candidates": 4300, "judgments": 2257}

    assert import_data("dl19", *args) == expected
    assert import_data("dl19", *args) == expected


@pytest.mark.slow
def test_kuake_qtr_train_imports_in_seconds(datasets):
    started = time.perf_counter()
    totals = import_data("kuake", *beir_args(datasets / "kuake-qtr-train"))
    seconds = time.perf_counter() - started

    assert totals == {"collection": "kuake", "documents": 23880, "queries": 6897, "candidates": 24174, "judgments": 24174}
    assert seconds < 60, f"kuake-qtr-train took {seconds:.1f}s"
