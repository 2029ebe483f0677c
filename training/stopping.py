"""Know when to stop judging: how sure the collection's dev figures are, run after run.

Each finished run measured, on its snapshot's dev queries, the model that serves after it -- the
winner when the gate promoted one, else the model that was serving (the "promoted" reference),
else the base used zero-shot -- and BM25, each with a bootstrap interval over the dev queries
(training.gate.mean_interval). More judged queries narrow the intervals; `stopping_rows` lists
them oldest first beside the people's grades the run's snapshot held, so staff see the interval
narrow with judgments, and `enough_judged` says whether the latest served interval is within the
collection's target width (RetrainPolicy.stop_width). Read from the runs' stored metrics: nothing
is scored again.
"""
from __future__ import annotations

from dataclasses import dataclass

from .candidates import ZERO_SHOT
from .models import TrainingRun


@dataclass(frozen=True)
class StoppingRow:
    run_id: int
    finished_at: object
    judgments: int            # people's grades in the collection when the run's snapshot was exported
    dev_queries: int
    served: str               # which model served after the run
    served_ndcg: float | None
    served_interval: tuple[float, float] | None
    bm25_ndcg: float | None
    bm25_interval: tuple[float, float] | None

    @property
    def served_width(self) -> float | None:
        return None if self.served_interval is None else self.served_interval[1] - self.served_interval[0]

    @property
    def bm25_width(self) -> float | None:
        return None if self.bm25_interval is None else self.bm25_interval[1] - self.bm25_interval[0]


def stopping_rows(collection, *, limit: int = 50) -> list[StoppingRow]:
    runs = (TrainingRun.objects.filter(collection=collection, status=TrainingRun.Status.DONE)
            .select_related("snapshot").order_by("-finished_at", "-pk")[:limit])
    rows = [row for row in (_row(run) for run in runs) if row is not None]
    return rows[::-1]


def enough_judged(rows: list[StoppingRow], target_width: float | None) -> bool | None:
    """True when the latest run's served interval is at most `target_width` wide; None without a
    target or a measured interval."""
    if target_width is None or not rows or rows[-1].served_width is None:
        return None
    return rows[-1].served_width <= target_width


def _row(run: TrainingRun) -> StoppingRow | None:
    metrics = run.metrics or {}
    if "candidates" not in metrics:
        return None  # an older run without per-candidate figures
    by_name = {c.get("name"): c for c in metrics["candidates"]}
    references = metrics.get("references") or {}
    decision = metrics.get("decision") or {}
    if decision.get("promoted") and decision.get("candidate") in by_name:
        served, figures = decision["candidate"], by_name[decision["candidate"]]
    elif "promoted" in references:
        served, figures = "promoted", references["promoted"]
    else:
        served, figures = ZERO_SHOT, by_name.get(ZERO_SHOT, {})
    bm25 = references.get("bm25", {})
    return StoppingRow(
        run_id=run.pk, finished_at=run.finished_at,
        judgments=run.snapshot.n_judgments if run.snapshot_id else 0,
        dev_queries=int(metrics.get("dev_queries") or 0), served=served,
        served_ndcg=figures.get("ndcg@10"), served_interval=_pair(figures.get("interval")),
        bm25_ndcg=bm25.get("ndcg@10"), bm25_interval=_pair(bm25.get("interval")))


def _pair(value) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if isinstance(value, (list, tuple)) and len(value) == 2 else None
