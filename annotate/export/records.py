"""What the export reads a collection into: query groups of candidate records, and the read's counts.

A CandidateRecord is a document with its Judged (label, soft label, weight, number of judgments,
source names); one Judged is shared by every pair that has the same, so the writers (writers.py)
encode it once. reading.py produces the groups, writers.py writes them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, eq=False)
class Judged:
    """What the export says about a pair besides its document: the aggregate and the candidate's
    source names. One object is shared by every pair with the same (a collection has few), so a
    writer can encode it once: it hashes by identity, and a dict holding it keeps it alive."""
    label: int
    soft_label: float
    weight: float
    n_judgments: int
    grade_probs: tuple[float, ...] | None  # the annotator model's posterior over 0..3 (method "model")
    sources: tuple[str, ...]  # sorted
    # The candidate's best rank among the retrieval sources that ranked it (None: none did), so
    # training can take a group's hardest negatives first.
    retrieval_rank: int | None = None


@dataclass(slots=True)
class CandidateRecord:
    doc_id: str
    doc: str
    judged: Judged

    @property
    def label(self) -> int:
        return self.judged.label

    @property
    def soft_label(self) -> float:
        return self.judged.soft_label

    @property
    def weight(self) -> float:
        return self.judged.weight

    @property
    def n_judgments(self) -> int:
        return self.judged.n_judgments

    @property
    def sources(self) -> tuple[str, ...]:
        return self.judged.sources

    @property
    def grade_probs(self) -> tuple[float, ...] | None:
        return self.judged.grade_probs

    @property
    def retrieval_rank(self) -> int | None:
        return self.judged.retrieval_rank



@dataclass(slots=True)
class QueryGroup:
    query_id: str
    query: str
    split: str
    candidates: list[CandidateRecord]


@dataclass
class ReadCounts:
    queries_read: int = 0
    candidates_read: int = 0
    judgments_read: int = 0
    pairs_unlabelled: int = 0
    pairs_filtered: int = 0
    queries_low_alpha: int = 0
    queries_without_positive: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

