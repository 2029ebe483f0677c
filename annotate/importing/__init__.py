"""The importing stage: relevance data files into a collection, from the command line or as a job.

    from annotate.importing import import_files, ImportFileError
    totals = import_files(collection_slug="dl19", corpus=Path("corpus.jsonl"), qrels=Path("qrels.tsv"))

    job = start_import(collection_slug="dl19", files={"corpus": upload}, created_by=user)  # web / API

One module per format family reads its files as a stream (beir, qrels, trec_run, labels); store
writes in batches; importer runs one import in one transaction (see it for what each file becomes);
uploads checks and stores uploaded files; jobs starts, runs and recovers an import job.
"""
from .errors import ImportFileError, InvalidCollectionSlug
from .importer import ImportReport, import_files, run_import
from .jobs import execute_import, recover_lost_imports, start_import
from .uploads import UploadRejected

__all__ = ["ImportFileError", "InvalidCollectionSlug", "ImportReport", "UploadRejected", "execute_import",
           "import_files", "recover_lost_imports", "run_import", "start_import"]
