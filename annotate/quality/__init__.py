"""Quality control of a collection's judgments: the collection-level stage around the pure statistics
of annotate/agreement/. It reads the judgments, keeps the agreement report (AgreementReport rows),
runs it in the background, and owns gold candidates, adjudication and the staff pages that show them.

- `ratings`, `scope`: read a collection's judgments (or a subset) into the statistics' inputs.
- `report`, `thresholds`: compute every figure and store a report; the flags' thresholds from settings.
- `tasks`, `triggers`: the Celery tasks and the cheap, debounced "recompute after every N judgments"
  hook of the judging path (Redis).
- `gold`: mark / import gold candidates; mixing them into tasks lives in annotate/judging/assignment.py.
- `adjudication`: staff set a final grade with a reason; the queue of what needs one.
- `selectors`, `svg`: reads and small server-side charts for the dashboard.
- `views`, `api`, `urls`, `admin_actions`: the pages, the API and admin actions (staff only: 403 for
  everyone else).
"""
