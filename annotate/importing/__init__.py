"""Importing relevance data: BEIR corpus/queries, qrels, TREC runs and labelled seed files.

    from annotate.importing import import_files, ImportFileError
    totals = import_files(collection_slug="dl19", corpus=Path("corpus.jsonl"), qrels=Path("qrels.tsv"))

One module per format family reads its files as a stream (beir, qrels, trec_run, labels); store
writes in batches; service runs one import in one transaction. See service.py for what each file
becomes.
"""
from .errors import ImportFileError, InvalidCollectionSlug
from .service import ImportReport, import_files, run_import

__all__ = ["ImportFileError", "InvalidCollectionSlug", "ImportReport", "import_files", "run_import"]
