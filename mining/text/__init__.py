"""Text utilities every app uses: CJK-aware tokenisation, exact BM25, query-term highlighting.

Plain Python (numpy, scipy, jieba): nothing here imports Django or another first-party module, so
annotate, mining and training may all use it without depending on each other.
"""
