"""The judging stage: who gets which query (assignment, leases, pins), the grades they record
(services), what a task shows them (selectors), the guidelines beside it, and the judging page and
API. Blind: nothing here shows an annotator another's grade, a candidate's source, rank or score."""
