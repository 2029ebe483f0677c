"""Query groups -> fixed-size training groups -> tokenised, length-aware batches.

Groups for training (``training_groups``): each query becomes one fixed-size group of
``group_size`` candidates: its positives (grade >= ``positive_threshold``, default 2, the TREC DL
relevance convention also used by the metrics), best grade first, capped at half the group so
negatives always get room, then negatives, hardest first. A negative is harder the better the
retriever ranked it (the export's ``retrieval_rank``: a document the retriever puts near the top
but annotators graded below the threshold is what the reranker must learn to push down);
candidates no source ranked come after the ranked ones; among equals, the higher grade first (a
grade-1 "marginal" document is closer to the boundary than a grade-0 one), then file order.

When a query has more negatives than room, which ones fill it is drawn anew every epoch
(``EpochDraw``): without replacement, the i-th hardest (from 1) with weight 1 / i, so the
hardest are drawn most often but every negative is seen over the epochs. The draw is a function
of (seed, epoch, query id) alone, so a resumed run draws the same groups. Without a draw the
group takes the hardest ones. Positives are never drawn away. A query with no positive teaches a
listwise loss nothing and is left out (and counted); a query with fewer candidates than the group
size is padded and masked.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from annotate.grades import GRADE_MAX, GRADES

from .config import DEFAULT_POSITIVE_THRESHOLD
from .data import QueryGroup
from .losses import grade_probs_from_soft_labels, pick_in_batch_negatives


@dataclass
class TrainingGroup:
    """A query's fixed-size group: real candidates first, then ``mask`` False padding."""

    query: str
    docs: list[str]
    labels: list[float]
    weights: list[float]
    soft_labels: list[float] | None = None  # None: each label / 3
    grade_probs: list[tuple[float, ...] | None] | None = None  # None (or an entry): from the soft label


@dataclass(frozen=True)
class EpochDraw:
    """Which negatives fill the groups of one epoch: drawn from (seed, epoch, query id)."""

    seed: int
    epoch: int

    def rng(self, query_id: str) -> random.Random:
        # sha256, not hash(): Python salts str hashes per process, and a resumed run must draw the same.
        key = hashlib.sha256(f"{self.seed}/{self.epoch}/{query_id}".encode()).digest()
        return random.Random(int.from_bytes(key[:8], "big"))


def training_groups(
    groups: Sequence[QueryGroup], *, group_size: int, positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD,
    draw: EpochDraw | None = None,
) -> tuple[list[TrainingGroup], int]:
    """Fixed-size groups (module docstring) and how many queries had no positive."""
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a positive and a negative), got {group_size}")
    selected: list[TrainingGroup] = []
    without_positive = 0
    for group in groups:
        order = range(len(group))
        positives = sorted((i for i in order if group.labels[i] >= positive_threshold),
                           key=lambda i: -group.labels[i])
        if not positives:
            without_positive += 1
            continue
        negatives = hardest_first(group, [i for i in order if group.labels[i] < positive_threshold])
        positives = positives[: max(1, group_size // 2, group_size - len(negatives))]
        room = group_size - len(positives)
        if draw is not None and len(negatives) > room:
            negatives = _draw_negatives(negatives, room, draw.rng(group.query_id))
        chosen = (positives + negatives)[:group_size]
        selected.append(TrainingGroup(
            query=group.query,
            docs=[group.docs[i] for i in chosen],
            labels=[group.labels[i] for i in chosen],
            weights=[group.weights[i] for i in chosen],
            soft_labels=[group.soft_label(i) for i in chosen],
            grade_probs=[group.probs(i) for i in chosen],
        ))
    return selected, without_positive


def hardest_first(group: QueryGroup, candidates: Sequence[int]) -> list[int]:
    """The candidates (indices into ``group``) hardest first: best retrieval rank, unranked after
    ranked, then the higher grade, then file order."""
    def hardness(i: int) -> tuple:
        rank = group.retrieval_rank(i)
        return rank is None, rank or 0, -group.labels[i], i
    return sorted(candidates, key=hardness)


def _draw_negatives(negatives: list[int], room: int, rng: random.Random) -> list[int]:
    """``room`` of the hardest-first ``negatives`` without replacement, the i-th (from 1) with
    weight 1 / i, kept hardest first. Efraimidis and Spirakis' keys: the ``room`` largest
    ``u ** (1 / weight)``, compared as ``log(u) * i``."""
    keys = [(math.log(1.0 - rng.random()) * position, position) for position in range(1, len(negatives) + 1)]
    drawn = sorted(position for _, position in sorted(keys, reverse=True)[:room])
    return [negatives[position - 1] for position in drawn]


# --- tokenising and batching --------------------------------------------------------------------


def encode_pairs(tokenizer, queries: Sequence[str], docs: Sequence[str], *, max_length: int) -> dict:
    """Token ids of (query, doc) pairs, unpadded. The document is cut, never the query --
    except a query so long it leaves less than half of ``max_length`` for the document, which is
    cut too (``longest_first``) instead of failing."""
    query_lengths = [len(ids) for ids in tokenizer(list(dict.fromkeys(queries)), add_special_tokens=False)["input_ids"]]
    too_long = {query for query, n in zip(dict.fromkeys(queries), query_lengths) if n > max_length // 2}
    if not too_long:
        return tokenizer(list(queries), list(docs), truncation="only_second", max_length=max_length)
    encoded: dict[str, list] = {}
    for strategy, keep in (("only_second", False), ("longest_first", True)):
        index = [i for i, query in enumerate(queries) if (query in too_long) == keep]
        if not index:
            continue
        part = tokenizer([queries[i] for i in index], [docs[i] for i in index],
                         truncation=strategy, max_length=max_length)
        for key, values in part.items():
            column = encoded.setdefault(key, [None] * len(queries))
            for i, value in zip(index, values):
                column[i] = value
    return encoded


def pad_features(tokenizer, encoded: dict, rows: Sequence[int]) -> dict[str, torch.Tensor]:
    """The given rows padded to their longest, as tensors."""
    features = [{key: encoded[key][row] for key in encoded} for row in rows]
    return tokenizer.pad(features, padding="longest", return_tensors="pt")


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (longest first), so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def padding_chunks(lengths: Sequence[int], *, chunk_cost: int) -> list[list[int]]:
    """Split rows into forward passes that waste the least compute on padding.

    Rows are sorted by length (longest first) and cut into contiguous runs; a run costs its rows
    times its longest row in tokens (what the padded forward pass computes) plus ``chunk_cost``
    tokens for having one more pass (smaller matrix products, one more set of kernel launches).
    The cut is the exact optimum of that cost (dynamic programming over the sorted lengths, n^2
    for the tens of pairs of a micro-batch). ``chunk_cost=0`` splits wherever a row is shorter;
    a huge one keeps a single pass.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    if n == 0:
        return []
    sorted_lengths = [lengths[i] for i in order]
    # best[j] = least cost of the first j rows; cut[j] = where the last run of that optimum starts.
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end):
            cost = best[start] + sorted_lengths[start] * (end - start) + chunk_cost
            if cost < best[end]:
                best[end], cut[end] = cost, start
    chunks, end = [], n
    while end > 0:
        chunks.append(order[cut[end]:end])
        end = cut[end]
    return chunks[::-1]


def bucketed_batches(lengths: Sequence[int], batch_size: int, *, seed: int, bucket_batches: int = 50) -> list[list[int]]:
    """Training order: shuffle, then sort by length inside buckets of ``bucket_batches`` batches,
    cut into batches and shuffle the batches. Padding stays small while the order stays random;
    the same seed gives the same order (resume relies on it)."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    bucket = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start:start + bucket], key=lambda i: -lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


class PairEncodings:
    """Token ids of (query, document) pairs, each pair encoded once however many epochs draw it."""

    def __init__(self, tokenizer, *, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.encoded: dict[str, list] = {}
        self.row_of: dict[tuple[str, str], int] = {}

    def rows(self, queries: Sequence[str], docs: Sequence[str]) -> list[int]:
        """Each pair's row in ``encoded``, encoding the pairs not seen before."""
        pairs = list(zip(queries, docs))
        new = [pair for pair in dict.fromkeys(pairs) if pair not in self.row_of]
        if new:
            part = encode_pairs(self.tokenizer, [q for q, _ in new], [d for _, d in new], max_length=self.max_length)
            start = len(self.row_of)
            for key, values in part.items():
                self.encoded.setdefault(key, []).extend(values)
            self.row_of.update((pair, start + offset) for offset, pair in enumerate(new))
        return [self.row_of[pair] for pair in pairs]


class EncodedGroups:
    """Training groups tokenised: pair encodings (shared with other epochs' groups through
    ``pairs``) plus each group's rows in them."""

    def __init__(self, tokenizer, groups: Sequence[TrainingGroup], *, group_size: int, max_length: int,
                 pairs: PairEncodings | None = None):
        self.tokenizer = tokenizer
        self.group_size = group_size
        self.max_length = max_length
        pairs = pairs if pairs is not None else PairEncodings(tokenizer, max_length=max_length)
        self.rows = [pairs.rows([group.query] * len(group.docs), group.docs) for group in groups]
        self.encoded = pairs.encoded
        self.groups = list(groups)
        pair_lengths = self.encoded["input_ids"]
        self.lengths = [max(len(pair_lengths[row]) for row in rows) for rows in self.rows]

    def __len__(self) -> int:
        return len(self.groups)

    def batch(self, group_indices: Sequence[int], *, chunk_cost: int | None = None, in_batch_negatives: int = 0,
              generator: torch.Generator | None = None) -> dict:
        """Features of every real pair of the groups, plus labels/weights/soft_labels/mask matrices
        [n_groups, group_size], grade_probs [n_groups, group_size, 4] (given, or from the soft
        label) and each pair's (row, column) in them.

        ``features`` is a list of padded forward passes: one (``chunk_cost=None``) or the pairs
        sorted by length and cut by :func:`padding_chunks`; ``positions`` follows the pairs in
        the order the passes' logits are concatenated, as flat indices into the [n_groups,
        group_size] matrix and, past its end, into a [n_groups, in_batch_negatives] matrix of
        borrowed negatives: each query paired with other queries' documents
        (training.losses.pick_in_batch_negatives; ``negative_mask`` marks the ones it got)."""
        rows, positions = [], []
        n, size = len(group_indices), self.group_size
        labels, weights, soft_labels = torch.zeros(n, size), torch.zeros(n, size), torch.zeros(n, size)
        given_probs = torch.zeros(n, size, len(GRADES))
        has_probs = torch.zeros(n, size, dtype=torch.bool)
        mask = torch.zeros(n, size, dtype=torch.bool)
        for row, index in enumerate(group_indices):
            group = self.groups[index]
            count = len(self.rows[index])
            rows.extend(self.rows[index])
            positions.extend(row * size + column for column in range(count))
            labels[row, :count] = torch.tensor(group.labels)
            weights[row, :count] = torch.tensor(group.weights)
            soft_labels[row, :count] = torch.tensor(
                group.soft_labels if group.soft_labels is not None else [label / GRADE_MAX for label in group.labels])
            for column, probs in enumerate(group.grade_probs or ()):
                if probs is not None:
                    given_probs[row, column] = torch.tensor(probs)
                    has_probs[row, column] = True
            mask[row, :count] = True
        grade_probs = torch.where(has_probs.unsqueeze(2), given_probs, grade_probs_from_soft_labels(soft_labels))
        features = {key: [self.encoded[key][r] for r in rows] for key in self.encoded}
        negative_mask = torch.zeros(n, in_batch_negatives, dtype=torch.bool)
        if in_batch_negatives:
            groups = [self.groups[index] for index in group_indices]
            # A document is known by its text: the same text in two groups is one document.
            picks = pick_in_batch_negatives([g.docs for g in groups], in_batch_negatives, generator=generator)
            queries, docs = [], []
            for row, borrowed in enumerate(picks):
                for column, (other, position) in enumerate(borrowed):
                    queries.append(groups[row].query)
                    docs.append(groups[other].docs[position])
                    positions.append(n * size + row * in_batch_negatives + column)
                    negative_mask[row, column] = True
            if docs:
                extra = encode_pairs(self.tokenizer, queries, docs, max_length=self.max_length)
                for key in features:
                    features[key].extend(extra[key])
        if chunk_cost is None:
            chunks = [list(range(len(positions)))]
        else:
            chunks = padding_chunks([len(ids) for ids in features["input_ids"]], chunk_cost=chunk_cost)
        order = [i for chunk in chunks for i in chunk]
        return {
            "features": [pad_features(self.tokenizer, features, chunk) for chunk in chunks],
            "positions": torch.tensor([positions[i] for i in order]),
            "labels": labels,
            "weights": weights,
            "soft_labels": soft_labels,
            "grade_probs": grade_probs,
            "mask": mask,
            "negative_mask": negative_mask,
        }


def distillation_groups(
    groups: Sequence[QueryGroup], teacher: Sequence[np.ndarray], *, group_size: int, draw: EpochDraw,
) -> tuple[list[TrainingGroup], list[np.ndarray], int]:
    """Groups of at most ``group_size`` candidates with their teacher scores: the teacher's top
    half always, the rest drawn uniformly from the others by (seed, epoch, query id); kept in the
    teacher's order. Returns (groups, their teacher scores, groups left out for having fewer
    than two candidates)."""
    selected, scores, left_out = [], [], 0
    for group, teacher_scores in zip(groups, teacher):
        if len(group) < 2:
            left_out += 1   # a softmax over one candidate is 1 whatever the scores: nothing to learn
            continue
        order = [int(i) for i in np.argsort(-teacher_scores, kind="stable")]
        top, rest = order[: group_size // 2], order[group_size // 2:]
        room = group_size - len(top)
        if len(rest) > room:
            taken = set(draw.rng(group.query_id).sample(rest, room))
            rest = [i for i in rest if i in taken]
        chosen = top + rest
        n = len(chosen)
        selected.append(TrainingGroup(query=group.query, docs=[group.docs[i] for i in chosen],
                                      labels=[0.0] * n, weights=[1.0] * n))
        scores.append(teacher_scores[chosen])
    return selected, scores, left_out


class TextEncodings:
    """Token ids of single texts, each text tokenised once however many epochs draw it."""

    def __init__(self, tokenizer, *, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.encoded: dict[str, list] = {}
        self.row_of: dict[str, int] = {}

    def rows(self, texts: Sequence[str]) -> list[int]:
        new = [text for text in dict.fromkeys(texts) if text not in self.row_of]
        if new:
            part = self.tokenizer(new, truncation=True, max_length=self.max_length)
            for key, values in part.items():
                self.encoded.setdefault(key, []).extend(values)
            self.row_of.update((text, len(self.row_of)) for text in new)
        return [self.row_of[text] for text in texts]

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's token count (tokenising, in one call, those not seen before)."""
        rows = self.rows(texts)
        return [len(self.encoded["input_ids"][row]) for row in rows]
