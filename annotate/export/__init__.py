"""Export: judgments -> weighted training files (listwise, pointwise, pairwise, qrels, FlagEmbedding).

filters.py parses and checks the parameters. reading.py reads the collection as query groups
(records.py): batches.py picks the queries in order and in batches, labelling.py decides which
judgments count and aggregates each pair (aggregation.py, with the reliabilities and per-query
alpha that reports.py takes from the latest agreement report), postgres.py holds PostgreSQL's
batch reads. writers.py writes one format each, and services.py records every export as an
ExportSnapshot with its file under DATA_DIR. The surfaces: views.py (download, REST job), admin.py
(an action on Collection), tasks.py (the job), and the `export_data` command.

Public for other apps (training): services.create_snapshot and services.human_judgment_count.
"""
