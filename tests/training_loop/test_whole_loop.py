"""The whole loop, end to end, with real parts: import -> simulated annotators -> export -> a
training run on a real Celery worker (training queue, real Redis, PostgreSQL) -> promotion ->
POST /api/rerank serving the promoted model.

Everything goes through the surfaces a user or a schedule uses: the management commands
(`import_data`, `simulate_annotators`, `export_data`) and the HTTP API (start the run, poll it,
rerank). The data is the synthetic marker task of conftest.py, so a tiny BERT learns it in a few
dozen steps on CPU and must then beat BM25 (which cannot see the markers) on the dev queries.
"""
from __future__ import annotations

import io
import json
import random

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from annotate.models import Collection, Judgment
from annotate.splits import split_for
from training import registry
from training.models import TrainingRun
from training.rerank import clear_cache

from ..conftest import wait_for
from .conftest import FILLER, MARKERS

pytestmark = [pytest.mark.celery, pytest.mark.slow]


def _query_text(qid: str) -> str:
    return f"query {qid}"


def _query_ids(rng: random.Random, *, train: int, dev: int) -> list[str]:
    """Query ids whose text's hash split (annotate.splits) gives `train` train and `dev` dev queries."""
    wanted = {"train": train, "dev": dev}
    ids, i = [], 0
    while any(wanted.values()):
        qid = f"loop-q{i}"
        i += 1
        split = split_for(_query_text(qid))
        if wanted.get(split, 0) > 0:
            wanted[split] -= 1
            ids.append(qid)
    rng.shuffle(ids)
    return ids


def _write_beir(root, *, seed: int = 7, candidates: int = 6):
    """A BEIR corpus/queries/qrels triple of the marker task: every query has one grade 2-3 document
    and five others, grades written into the documents as marker words."""
    rng = random.Random(seed)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for n, qid in enumerate(_query_ids(rng, train=40, dev=20)):
        queries.append({"_id": qid, "text": _query_text(qid)})
        grades = [rng.choice([2, 3])] + [rng.choice([0, 0, 1, 2]) for _ in range(candidates - 1)]
        for d, grade in enumerate(grades):
            words = rng.sample(FILLER, rng.randint(3, 12))
            if grade in MARKERS:
                words.insert(rng.randrange(len(words) + 1), MARKERS[grade])
            doc_id = f"{qid}-d{d}"
            corpus.append({"_id": doc_id, "text": " ".join(words)})
            qrels.append(f"{qid}\t{doc_id}\t{grade}")
    paths = {name: root / f"{name}.{ext}" for name, ext in (("corpus", "jsonl"), ("queries", "jsonl"), ("qrels", "tsv"))}
    paths["corpus"].write_text("".join(json.dumps(row) + "\n" for row in corpus))
    paths["queries"].write_text("".join(json.dumps(row) + "\n" for row in queries))
    paths["qrels"].write_text("\n".join(qrels) + "\n")
    return paths


def _last_json(command: str, *args: str) -> dict:
    """Run a management command as its command line would (argparse converts the values)."""
    out = io.StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_import_annotate_export_train_promote_rerank(celery_worker_process, tiny_model, staff_user, settings, tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("the worker process needs a database it can share (PostgreSQL)")
    clear_cache()
    settings.BASE_MODEL_DIR = str(tiny_model)  # the run records it; the worker loads it from there

    # 1. Import: 60 queries (20 of them dev) x 6 documents with reference grades (qrels).
    files = _write_beir(tmp_path)
    imported = _last_json("import_data", "loop", "--corpus", str(files["corpus"]), "--queries", str(files["queries"]),
                          "--qrels", str(files["qrels"]))
    assert imported["queries"] == 60 and imported["candidates"] == 360

    # 2. Three simulated annotators judge every candidate (noise 0.1) -> 1,080 people's judgments.
    _last_json("simulate_annotators", "loop", "--annotators", "3", "--noise", "0.1", "--seed", "1")
    collection = Collection.objects.get(slug="loop")
    people = Judgment.objects.filter(candidate__query__collection=collection, annotator__isnull=False, grade__isnull=False)
    assert people.count() == 1080

    # 3. Export the weighted listwise snapshot (train and dev lines, split by query hash).
    snapshot = _last_json("export_data", "loop", "--format", "listwise", "--out", str(tmp_path / "loop.jsonl"))
    lines = [json.loads(line) for line in (tmp_path / "loop.jsonl").read_text().splitlines()]
    assert sorted({line["split"] for line in lines}) == ["dev", "train"] and len(lines) == 60
    assert all(0 < c["weight"] <= 1 and c["n_judgments"] >= 3 for line in lines for c in line["candidates"])

    # 4. Start the training run over HTTP as staff; the worker on the training queue takes it.
    staff = APIClient()
    staff.force_login(staff_user)
    response = staff.post("/api/collections/loop/training-runs/", {
        "snapshot": snapshot["snapshot"],
        # The cross-encoder candidate only (the zero-shot base is always scored); 20 dev queries, the
        # gate's default minimum (10 left the gate's interval on the margin's edge).
        "params": {"epochs": 16, "batch_size": 4, "group_size": 6, "max_length": 32, "learning_rate": 1e-3,
                   "candidates": ["cross-encoder"]},
    }, format="json")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    assert registry.promoted_version(collection=collection) is None

    def finished():
        body = staff.get(f"/api/training-runs/{run_id}/").json()
        return body if body["status"] in ("done", "failed", "cancelled") else None

    body = wait_for(finished, timeout=240, interval=0.5,
                    message=f"the training run to finish\n{celery_worker_process.output()[-3000:]}")
    assert body["status"] == "done", body["error"]
    assert "training.tasks.train_run" in celery_worker_process.output()

    # 5. Promoted: the gate found the new model better than BM25 and the zero-shot base on the
    # snapshot's dev queries (nothing served before).
    metrics = body["metrics"]
    assert body["promoted"] is True and metrics["winner"] == "cross-encoder", metrics["decision"]
    assert metrics["decision"]["branch"] == "passes"
    assert metrics["new"]["ndcg@10"] > metrics["bm25"]["ndcg@10"]
    assert metrics["new"]["ndcg@10"] > metrics["base"]["ndcg@10"]
    promoted = registry.promoted_version(collection=collection)
    assert promoted.run_id == run_id
    assert TrainingRun.objects.get(pk=run_id).snapshot_id == snapshot["snapshot"]  # the run names its data

    # 6. Serving: /api/rerank with the promoted model puts the marked documents in grade order.
    documents = ["w1 w2 w3 w4", "w5 meh w6 w7", "w8 w9 best w10", "w11 good w12 w13"]
    response = staff.post("/api/rerank", {"query": "query q3", "documents": documents, "collection": "loop"},
                          format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    dev = result["model"].pop("dev")
    assert result["model"] == {"version": promoted.pk, "collection": "loop", "kind": "cross-encoder",
                               "source": "promoted"}
    assert dev["ndcg@10"] > dev["bm25_ndcg@10"] and dev["override_reason"] is None  # the gate promoted it
    assert result["warnings"] == []
    order = [hit["index"] for hit in result["results"]]
    # The two strongly marked documents first. Finer distinctions -- best vs good, and meh (grade
    # 1) vs unmarked -- are not asserted for a 32-wide model after 16 epochs over noisy labels: with
    # the queries split by text, meh and unmarked came out tied (scores within 0.003) whatever the
    # aggregation or the loss weighting; the dev metrics above hold the model to beating BM25.
    assert set(order[:2]) == {2, 3}, (order, result["scores"])
    assert len(result["scores"]) == 4
    clear_cache()
