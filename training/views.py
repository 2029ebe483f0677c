"""Staff pages: the search preview (BM25 recall -> rerank, judgments beside) and training runs."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.access import staff_collection
from annotate.models import Document, Judgment

from . import rerank as rerank_service
from . import services
from .models import TrainingRun
from .registry import model_versions, promoted_version
from .search import bm25_search

RECALL_DEPTH = 100
SHOWN = 20


@login_required
@require_GET
def search_preview(request, slug: str):
    collection = staff_collection(request.user, slug, "training and the search preview")
    query = request.GET.get("q", "").strip()
    context = {"collection": collection, "q": query, "results": [], "note": ""}
    if query:
        hits = bm25_search(collection, query, k=RECALL_DEPTH)
        documents = Document.objects.in_bulk([pk for pk, _ in hits])
        results = [{"document": documents[pk], "bm25": score, "bm25_rank": rank + 1, "rerank": None}
                   for rank, (pk, score) in enumerate(hits)]
        if results:
            try:
                reranked = rerank_service.rerank(
                    query=query, documents=[_text(r["document"]) for r in results], collection=collection)
                for item in reranked["results"]:
                    results[item["index"]]["rerank"] = item["score"]
                results = [results[item["index"]] for item in reranked["results"]]
                context["model_version"] = reranked["model"]["version"]
            except rerank_service.NoPromotedModel as error:
                context["note"] = f"{error}; showing BM25 order."
        results = results[:SHOWN]
        _attach_judgments(collection, query, results)
        context["results"] = results
    return render(request, "training/search_preview.html", context)


def _text(document) -> str:
    return f"{document.title}\n{document.text}" if document.title else document.text


def _attach_judgments(collection, query: str, results: list[dict]) -> None:
    """Grades already given to (this query text, document) candidates, shown beside each result."""
    judgments = Judgment.objects.grades().filter(
        collection=collection, candidate__query__text=query, candidate__document_id__in=[r["document"].pk for r in results],
    ).values_list("candidate__document_id", "grade")
    grades: dict[int, list[int]] = {}
    for document_id, grade in judgments:
        grades.setdefault(document_id, []).append(grade)
    for result in results:
        result["grades"] = sorted(grades.get(result["document"].pk, []), reverse=True)


@login_required
@require_GET
def training_runs(request, slug: str):
    collection = staff_collection(request.user, slug, "training and the search preview")
    runs = list(TrainingRun.objects.filter(collection=collection).select_related("snapshot")[:50])
    for run in runs:
        run.dev_ndcg = [(run.metrics.get(name) or {}).get("ndcg@10") for name in ("base", "bm25", "promoted", "new")]
    return render(request, "training/runs.html", {
        "collection": collection, "runs": runs, "promoted": promoted_version(collection=collection),
        "versions": model_versions(collection=collection)[:20],
        "active": any(run.status in TrainingRun.ACTIVE for run in runs),
    })


@login_required
@require_POST
def cancel_training_run(request, slug: str, run_id: int):
    collection = staff_collection(request.user, slug, "training and the search preview")
    services.request_cancel(run=get_object_or_404(TrainingRun, pk=run_id, collection=collection))
    return redirect("training-runs", slug=slug)
