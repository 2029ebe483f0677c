"""Export: judgments -> weighted training files (listwise, pointwise, pairwise, qrels, FlagEmbedding).

filters.py parses and checks the parameters, records.py reads the collection as query groups
(aggregating each pair with annotate/aggregation.py), writers.py writes one format each, and
services.py records every export as an ExportSnapshot with its file under DATA_DIR. The surfaces:
views.py (download, REST job), admin.py (an action on Collection), tasks.py (the job), and the
`export_data` command.
"""
