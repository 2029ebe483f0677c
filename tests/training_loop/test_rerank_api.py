"""POST /api/rerank and the staff search preview."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from annotate.models import Candidate, Collection, Document, Judgment, Membership, Query
from training import registry
from training.models import ModelVersion
from training.rerank import MAX_DOCUMENTS, clear_cache

pytestmark = pytest.mark.django_db
URL = "/api/rerank"


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def collection():
    return Collection.objects.create(slug="rr", name="rr", tokenizer="whitespace")


@pytest.fixture
def promoted(collection, trained_model):
    return registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(trained_model)))


@pytest.fixture
def member(collection):
    user = get_user_model().objects.create_user("member", password="pw-123456789")
    Membership.objects.create(collection=collection, user=user)
    return user


def post(client, user, payload):
    if user is not None:
        client.force_login(user)
    return client.post(URL, payload, content_type="application/json")


def test_the_promoted_model_orders_documents_by_grade(client, member, promoted):
    documents = ["w1 w2 w3", "w4 good w5", "w6 best w7", "meh w8"]
    response = post(client, member, {"query": "query q1", "documents": documents, "top_k": 3, "collection": "rr"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == {"version": promoted.pk, "collection": "rr", "kind": "cross-encoder", "source": "promoted",
                             "dev": {"ndcg@10": None, "bm25_ndcg@10": None, "queries": None, "override_reason": None}}
    assert body["warnings"] == []
    top = [r["index"] for r in body["results"]]
    assert set(top[:2]) == {1, 2}  # "best" and "good" above "meh" and the unmarked document
    assert len(body["scores"]) == 4 and body["results"][0]["score"] == max(body["scores"])


def test_a_promotion_is_picked_up_without_a_restart(client, member, promoted, collection, trained_model, tmp_path):
    import shutil

    assert post(client, member, {"query": "q", "documents": ["a"], "collection": "rr"}).json()["model"]["version"] == promoted.pk
    copy = shutil.copytree(trained_model, tmp_path / "copy")
    newer = registry.promote(version=ModelVersion.objects.create(collection=collection, path=str(copy)))
    assert post(client, member, {"query": "q", "documents": ["a"], "collection": "rr"}).json()["model"]["version"] == newer.pk


@pytest.mark.parametrize("payload, field", [
    ({"query": "  ", "documents": ["a"]}, "query"),
    ({"documents": ["a"]}, "query"),
    ({"query": "q", "documents": []}, "documents"),
    ({"query": "q", "documents": ["a", 3]}, "documents"),
    ({"query": "q", "documents": "a"}, "documents"),
    ({"query": "q", "documents": ["a"] * (MAX_DOCUMENTS + 1)}, "documents"),
    ({"query": "q", "documents": ["a"], "top_k": 0}, "top_k"),
    ({"query": "q", "documents": ["a"], "top_k": MAX_DOCUMENTS + 1}, "top_k"),
])
def test_bad_input_gets_400_naming_the_field(client, member, promoted, payload, field):
    response = post(client, member, payload)
    assert response.status_code == 400
    assert field in response.json()


def judge(collection, member, query_text: str, graded: dict[str, int]) -> None:
    query = Query.objects.create(collection=collection, external_id=query_text, text=query_text,
                                 content_hash=query_text)
    for text, grade in graded.items():
        document, _ = Document.objects.get_or_create(collection=collection, external_id=text,
                                                     defaults={"text": text, "content_hash": text})
        candidate = Candidate.objects.create(collection=collection, query=query, document=document)
        Judgment.objects.create(collection=collection, candidate=candidate, annotator=member, grade=grade)


def judged_marker_queries(collection, member, n: int = 6) -> None:
    """Queries whose judged documents carry their grade as a marker word the trained tiny model reads,
    while the query's own words (which BM25 matches) sit in the worst documents."""
    for q in range(n):
        judge(collection, member, f"query q{q}", {f"w{q} best w{q + 9}": 3, f"w{q + 1} good": 2,
                                                  f"q{q} query w{q + 2}": 0, f"w{q + 3} w{q + 4}": 0,
                                                  f"w{q + 5}": 0, f"w{q + 6} w{q + 7}": 0})


def test_before_any_run_the_zero_shot_base_serves_when_it_beats_bm25(client, member, collection, settings,
                                                                        trained_model):
    settings.BASE_MODEL_DIR = trained_model  # a base that reads the markers: it beats BM25 here
    judged_marker_queries(collection, member)
    body = post(client, member, {"query": "query q1", "documents": ["q1 query w1", "w7 best"],
                                 "collection": "rr"}).json()
    assert body["model"]["source"] == "before any run", body
    assert body["model"]["kind"] == "cross-encoder", body["model"]
    standing = body["model"]["standing"]
    assert standing["serves"] == "zero-shot base" and standing["queries"] == 6
    assert standing["zero_shot_ndcg@10"] > standing["bm25_ndcg@10"]
    assert body["results"][0]["index"] == 1


def test_before_any_run_bm25_serves_when_the_base_is_worse(client, member, collection, settings, tiny_model):
    settings.BASE_MODEL_DIR = tiny_model  # an untrained head: no better than chance
    judge(collection, member, "red car", {"a red car": 3, "red car for sale": 2, "blue sky": 0, "green tree": 0})
    judge(collection, member, "blue sky", {"the blue sky": 3, "a red car": 0, "green tree": 0})
    body = post(client, member, {"query": "red car", "documents": ["green tree", "a red car", "blue sky", "a dog"],
                                 "collection": "rr"}).json()
    assert body["model"]["kind"] == "bm25" and body["model"]["standing"]["serves"] == "bm25"
    assert body["results"][0]["index"] == 1  # BM25 over the given documents
    assert body["model"]["standing"]["bm25_ndcg@10"] == 1.0


def test_without_a_promoted_model_or_a_base_model_the_api_is_503(client, member, collection, settings):
    settings.BASE_MODEL_DIR = None
    response = post(client, member, {"query": "q", "documents": ["a"], "collection": "rr"})
    assert response.status_code == 503
    assert "no reranker is promoted for collection rr" in response.json()["detail"]


def test_anonymous_callers_are_refused_and_outsiders_do_not_see_the_collection(client, promoted):
    assert post(client, None, {"query": "q", "documents": ["a"]}).status_code in (401, 403)
    outsider = get_user_model().objects.create_user("outsider", password="pw-123456789")
    assert post(client, outsider, {"query": "q", "documents": ["a"], "collection": "rr"}).status_code == 404


def test_search_preview_recalls_with_bm25_reranks_and_shows_judgments(client, collection, promoted, staff_user, member):
    texts = {"d1": "w1 w2 meh", "d2": "w1 best", "d3": "w1 good w9", "d4": "w30 w31"}
    documents = {ext: Document.objects.create(collection=collection, external_id=ext, text=text, content_hash=ext)
                 for ext, text in texts.items()}
    query = Query.objects.create(collection=collection, external_id="q", text="w1", content_hash="q")
    candidate = Candidate.objects.create(collection=collection, query=query, document=documents["d2"])
    Judgment.objects.create(collection=collection, candidate=candidate, annotator=member, grade=3)
    client.force_login(staff_user)
    response = client.get(reverse("search-preview", args=["rr"]), {"q": "w1"})
    assert response.status_code == 200
    results = response.context["results"]
    assert [r["document"].external_id for r in results] == ["d2", "d3", "d1"]  # d4 has no w1: not recalled
    assert results[0]["grades"] == [3] and results[1]["grades"] == []
    assert all(r["rerank"] is not None for r in results)
    assert f"the promoted model, version {promoted.pk} (cross-encoder)" in response.content.decode()
    # Second search reuses the index saved under DATA_DIR for this corpus version.
    from training.search import index_dir

    assert (index_dir(collection) / "index" / "meta.json").is_file()


def test_search_preview_says_when_bm25_orders_because_the_base_is_worse(client, collection, staff_user, member,
                                                                         settings, tiny_model):
    settings.BASE_MODEL_DIR = tiny_model
    judge(collection, member, "red car", {"a red car": 3, "red car for sale": 2, "blue sky": 0, "green tree": 0})
    judge(collection, member, "blue sky", {"the blue sky": 3, "a red car": 0, "green tree": 0})
    client.force_login(staff_user)
    page = client.get(reverse("search-preview", args=["rr"]), {"q": "red car"}).content.decode()
    assert "the base model does not beat BM25" in page and "BM25 order" in page


def test_search_preview_and_runs_page_are_staff_only(client, member, collection):
    client.force_login(member)
    assert client.get(reverse("search-preview", args=["rr"]), {"q": "x"}).status_code == 403
    assert client.get(reverse("training-runs", args=["rr"])).status_code == 403


def test_runs_page_shows_progress(client, staff_user, collection):
    client.force_login(staff_user)
    response = client.get(reverse("training-runs", args=["rr"]))
    assert response.status_code == 200 and b"No training runs yet" in response.content


def test_the_standing_reads_at_most_so_many_queries_and_candidates(collection, member, monkeypatch):
    from training import standing

    monkeypatch.setattr(standing, "MAX_QUERIES", 2)
    monkeypatch.setattr(standing, "MAX_CANDIDATES", 3)
    for q in range(3):
        judge(collection, member, f"query {q}", {f"doc {q} {d}": 3 - d % 4 for d in range(5)})
    groups = standing.judged_groups(collection)
    assert [g.query for g in groups] == ["query 0", "query 1"] and all(len(g) == 3 for g in groups)


def test_a_model_below_bm25_on_its_dev_queries_is_served_with_a_warning(client, collection, staff_user, member,
                                                                        trained_model):
    """#16 finding 9: a forced promotion served a model worse than BM25 and the preview said nothing."""
    from .test_run_page import finished_run

    finished_run(collection, {
        "winner": "bi-encoder", "dev_queries": 7,
        "candidates": [{"name": "bi-encoder", "ndcg@10": 0.41}],
        "references": {"bm25": {"ndcg@10": 0.52}},
        "decision": {"branch": "override", "override_reason": "want to see it", "reason": "promoted by staff override"},
    }, promoted=True, path=str(trained_model))
    Document.objects.create(collection=collection, external_id="d1", text="w1 best", content_hash="d1")
    Document.objects.create(collection=collection, external_id="d2", text="w1 meh", content_hash="d2")
    for i in range(3):  # documents without w1: it must have a positive idf to recall anything
        Document.objects.create(collection=collection, external_id=f"x{i}", text=f"w{20 + i} w30", content_hash=f"x{i}")
    expected = ("the serving model ranked below BM25 on its run's dev queries (NDCG@10 0.4100 vs 0.5200 on 7 "
                "queries); it was promoted by staff override (want to see it)")
    client.force_login(staff_user)
    page = client.get(reverse("search-preview", args=["rr"]), {"q": "w1"}).content.decode()
    assert f"<strong>Warning:</strong> {expected}." in page.replace("&#x27;", "'")
    body = post(client, member, {"query": "w1", "documents": ["w1 best", "w1 meh"], "collection": "rr"}).json()
    assert body["warnings"] == [expected]


def test_flat_scores_are_warned_about_and_bm25_or_spread_scores_are_not():
    from training.rerank import serving_warnings

    model = {"kind": "cross-encoder", "dev": {}}
    assert serving_warnings(model, [0.5, 0.5 + 1e-9, 0.5]) == [
        "the model gives these 3 documents practically the same score (spread 1e-09): their order says nothing"]
    assert serving_warnings(model, [0.5, 0.7, 0.1]) == []
    assert serving_warnings({"kind": "bm25"}, [0.0, 0.0]) == []  # BM25 ties are BM25's, not a broken model
    assert serving_warnings(model, [0.3]) == []


def test_warm_loads_what_serves_for_recently_judged_collections(collection, member, promoted, monkeypatch):
    """The web process started by `make run` calls warm() in the background: afterwards a rerank
    request loads nothing."""
    from training import rerank

    judge(collection, member, "w1", {"w1 best": 3, "w2 meh": 0})
    Collection.objects.create(slug="never-judged", name="n")
    assert rerank.warm() == ["rr"]
    loads = []
    monkeypatch.setattr(rerank, "load_ranker", lambda *a, **k: loads.append(a) or pytest.fail("loaded again"))
    rerank.rerank(query="w1", documents=["w1 best", "w2 meh"], collection=collection)
    assert loads == []
