"""The export's two read paths and its fast listwise writer give what the plain ones give."""
from __future__ import annotations

import json
import random

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from annotate.export.batches import query_batches as _query_batches
from annotate.export.batches import query_listing as _query_listing
from annotate.export.filters import ExportParams
from annotate.export.labelling import ReadContext as _Context
from annotate.export.postgres import PostgresBatches as _PostgresBatches
from annotate.export.records import CandidateRecord, Judged, QueryGroup, ReadCounts
from annotate.export.writers import ListwiseWriter
from annotate.models import Adjudication, AgreementReport, Candidate, Judgment
from annotate.simulation import SimulationParams, simulate_annotators

ODD_TEXTS = ['=HYPERLINK("http://x")', 'quote " and backslash \\ and /', "tab\tnew line\nreturn\r", "\x00\x1f\x7f",
             "南京旅游必去", "emoji 🙂 and \u2028 \u2029", "", "-", "+1", "@SUM(A1)"]


def test_the_listwise_line_is_the_json_encoding_of_the_line_dict_byte_for_byte():
    rng = random.Random(3)
    writer = ListwiseWriter(ExportParams())
    for _ in range(200):
        judged = [Judged(rng.randint(0, 3), round(rng.random(), 6),
                         rng.choice([0.0, 1.0, 1e-06, 5e-05, round(rng.random(), 6)]), rng.randint(0, 5),
                         rng.choice([None, (0.1, 0.2, 0.3, 0.4), (1.0, 0.0, 0.0, 0.0)]),
                         tuple(sorted(rng.sample(["bm25", "qrels", "dense", "é"], 2))),
                         rng.choice([None, 1, 57])) for _ in range(3)]
        candidates = [CandidateRecord(rng.choice(ODD_TEXTS) + str(i), rng.choice(ODD_TEXTS), rng.choice(judged))
                      for i in range(rng.randint(1, 4))]
        group = QueryGroup(rng.choice(ODD_TEXTS), rng.choice(ODD_TEXTS), rng.choice(["train", "dev", "test"]), candidates)
        expected = json.dumps({"query_id": group.query_id, "query": group.query, "split": group.split, "candidates": [
            {"doc_id": c.doc_id, "doc": c.doc, "label": c.label, "soft_label": c.soft_label, "weight": c.weight,
             **({"grade_probs": list(c.grade_probs)} if c.grade_probs is not None else {}),
             "n_judgments": c.n_judgments, "sources": list(c.sources),
             **({"retrieval_rank": c.retrieval_rank} if c.retrieval_rank is not None else {})} for c in candidates]},
            ensure_ascii=False, separators=(",", ":")) + "\n"
        assert list(writer.group_lines(group)) == [expected]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the batch read by id arrays and a helper thread is PostgreSQL's")
def test_the_postgresql_batch_read_gives_the_same_groups_as_the_generic_read(graded_collection):
    collection = graded_collection(queries=12, docs_per_query=9, seed=5)
    simulate_annotators(collection=collection, params=SimulationParams(annotators=3, noise=0.3, seed=2, random_share=0.3))
    users = list(get_user_model().objects.filter(username__startswith="sim-"))
    AgreementReport.objects.create(collection=collection, per_annotator=[
        {"annotator_id": users[0].pk, "reliability": 0.3}, {"annotator_id": users[1].pk, "reliability": 0.7}])
    judgments = list(Judgment.objects.filter(collection=collection, annotator__isnull=False).order_by("pk"))
    Judgment.objects.filter(pk=judgments[0].pk).update(grade=None, skipped=True, skip_reason="unreadable")
    Judgment.objects.filter(pk=judgments[1].pk).update(grade=None, withdrawn=True)
    staff = get_user_model().objects.create_user("boss", is_staff=True)
    Adjudication.objects.create(collection=collection, candidate_id=judgments[2].candidate_id, grade=0, reason="a",
                                decided_by=staff)
    Adjudication.objects.create(collection=collection, candidate_id=judgments[2].candidate_id, grade=3, reason="b",
                                decided_by=staff)
    Candidate.objects.filter(pk=judgments[3].candidate_id).update(is_gold=True, gold_grade=1)
    Candidate.objects.filter(pk=judgments[4].candidate_id).update(sources={})

    for params in (ExportParams(), ExportParams(include_simulated=False), ExportParams(min_weight=0.5, include_gold=False)):
        report = AgreementReport.objects.get()
        fast, generic = _Context(collection, params, report), _Context(collection, params, report)
        reads = _PostgresBatches(fast, _query_listing(collection, params))
        fast_counts, generic_counts = ReadCounts(), ReadCounts()
        for batch in _query_batches(collection, params):
            assert (flat(fast.groups(batch, reads.rows(*reads.fetch(batch)), fast_counts, None))
                    == flat(generic.groups(batch, generic.candidate_rows(batch), generic_counts, None)))
        assert fast_counts == generic_counts and fast_counts.judgments_read > 0


def flat(groups) -> list[tuple]:
    return [(g.query_id, g.query, g.split, c.doc_id, c.doc, c.label, c.soft_label, c.weight, c.n_judgments, c.sources)
            for g in groups for c in g.candidates]


def test_the_aggregate_does_not_depend_on_the_order_the_judgments_arrive_in(graded_collection):
    collection = graded_collection(queries=1, docs_per_query=1)
    orders = ["5:1,6:2,7:3,~qrels:q.tsv:2", "~qrels:q.tsv:2,7:3,5:1,6:2", "6:2,~qrels:q.tsv:2,5:1,7:3"]
    results = []
    for order in orders:  # a fresh context each time: nothing cached from another order
        context = _Context(collection, ExportParams(), None)
        context.reliability = {5: 0.9, 6: 0.55, 7: 0.1}
        outcome = context._outcome(order, None)
        results.append((outcome.judgments_read, outcome.result))
    assert results[0] == results[1] == results[2]
    assert results[0][0] == 4 and results[0][1][3] == 3  # four judgments read; the three people's grades count
