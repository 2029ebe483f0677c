"""Quality control of a collection's judgments: the agreement report (kept as AgreementReport rows),
gold candidates, adjudication, and the staff dashboard and pages that show them.

- `report`: read the judgments, compute every figure, store a report.
- `gold`: mark / import gold candidates; mixing them into tasks lives in annotate/assignment.py.
- `adjudication`: staff set a final grade with a reason; the queue of what needs one.
- `triggers`: the cheap, debounced "recompute after every N judgments" hook of the judging path.
- `svg`: small server-side charts for the dashboard.
- `views`, `api`, `urls`: the pages and the API (staff only: 403 for everyone else).
"""
