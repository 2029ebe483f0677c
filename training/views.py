"""Staff pages: the search preview (BM25 recall -> rerank, judgments beside), training runs, and a
run's page (its candidates, the gate's decision, and "Promote anyway" for staff)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.access import staff_collection
from annotate.models import Document, ExportSnapshot, Judgment

from . import rerank as rerank_service
from . import services, wording
from .candidates import BI, CROSS, DEFAULT_CANDIDATES, FUSED, ZERO_SHOT
from .charts import loss_chart
from .config import DEFAULT_PROMOTION_MARGIN, TrainingParamsError
from .judge_runs import JudgeRunAlreadyActive, request_served_judge
from .models import MachineJudgeRun, ModelVersion, RetrainPolicy, TrainingRun
from .override import (
    MAX_REASON_LENGTH,
    OverrideReasonError,
    OverrideRefused,
    override_promotion,
    serve_version_again,
)
from .registry import model_versions, promoted_version
from .retraining import every_hours_of, new_judgments_since_last_run, sync_schedule
from .search import bm25_search
from .stopping import enough_judged, stopping_rows

RECALL_DEPTH = 100
SHOWN = 20
STAFF_WHAT = _("training and the search preview")


@login_required
@require_GET
def search_preview(request, slug: str):
    collection = staff_collection(request.user, slug, STAFF_WHAT)
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
                context["served_by"] = served_by(reranked["model"])
                context["warnings"] = rerank_service.shown_warnings(reranked["model"], reranked["scores"])
            except rerank_service.NoPromotedModel as error:
                context["note"] = gettext("%(problem)s; showing BM25 order.") % {"problem": error}
        results = results[:SHOWN]
        _attach_judgments(collection, query, results)
        context["results"] = results
    return render(request, "training/search_preview.html", context)


def served_by(model: dict) -> str:
    """Which reranker ordered the results, in words (training.rerank.serving)."""
    if model.get("source") == "promoted":
        return gettext("reranked by the promoted model, version %(version)s (%(kind)s)") % {
            "version": model["version"], "kind": wording.model_name(model["kind"])}
    standing = model.get("standing") or {}
    figures = gettext("zero-shot NDCG@10 %(zero_shot)s vs BM25 %(bm25)s on %(n)s judged queries") % {
        "zero_shot": _figure(standing.get("zero_shot_ndcg@10")), "bm25": _figure(standing.get("bm25_ndcg@10")),
        "n": standing.get("queries", 0)}
    if model.get("kind") == "bm25":
        return gettext("nothing promoted yet and the base model does not beat BM25 (%(figures)s): BM25 order") % {
            "figures": figures}
    return gettext("nothing promoted yet: reranked by the base model used zero-shot, which beats BM25 "
                   "(%(figures)s)") % {"figures": figures}


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


class StartRunForm(forms.Form):
    """Start a training run from the runs page: a listwise snapshot and the settings staff change
    most. Empty fields keep the defaults (chosen by figures, README "Training runs")."""

    snapshot = forms.ModelChoiceField(label=_("Snapshot"), queryset=ExportSnapshot.objects.none(), empty_label=None,
                                      help_text=_("a finished listwise export of this collection"))
    candidates = forms.MultipleChoiceField(
        label=_("Candidates"),
        choices=[(ZERO_SHOT, _("zero-shot base")), (BI, _("bi-encoder, fine-tuned")),
                 (CROSS, _("cross-encoder (slow on CPU)")), (FUSED, _("fusion with BM25"))],
        initial=list(DEFAULT_CANDIDATES), widget=forms.CheckboxSelectMultiple)
    epochs = forms.IntegerField(label=_("Epochs"), required=False, min_value=1, max_value=100)
    learning_rate = forms.FloatField(label=_("Learning rate"), required=False, min_value=1e-7, max_value=1.0)
    min_dev_queries = forms.IntegerField(label=_("Minimum dev queries"), required=False, min_value=1,
                                         max_value=100_000,
                                         help_text=_("below this the gate promotes nothing (default 20)"))
    promotion_margin = forms.FloatField(label=_("Promotion margin"), required=False, min_value=-0.99, max_value=0.99,
                                        help_text=_("dev NDCG@10 gain the lower bound must clear (default 0: better at all)"))

    def __init__(self, *args, collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = ExportSnapshot.objects.filter(
            collection=collection, format="listwise", status=ExportSnapshot.Status.DONE).order_by("-created_at", "-pk")
        self.fields["snapshot"].label_from_instance = lambda s: gettext("#%(id)s · %(created)s · %(n)s queries") % {
            "id": s.pk, "created": f"{s.created_at:%Y-%m-%d %H:%M}", "n": s.counts.get("queries", "?")}

    def params(self) -> dict:
        data = self.cleaned_data
        params = {key: data[key] for key in ("epochs", "learning_rate", "min_dev_queries", "promotion_margin")
                  if data.get(key) is not None}
        if list(data["candidates"]) != list(DEFAULT_CANDIDATES):
            params["candidates"] = list(data["candidates"])
        return params


@login_required
@require_http_methods(["GET", "POST"])
def training_runs(request, slug: str):
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    form = StartRunForm(request.POST or None, collection=collection,
                        initial={"snapshot": request.GET.get("snapshot")})
    if request.method == "POST" and form.is_valid():
        try:
            run = services.start_training_run(snapshot=form.cleaned_data["snapshot"], created_by=request.user,
                                              params=form.params())
        except (TrainingParamsError, services.TrainingDataError, services.RunAlreadyActive) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, gettext("Training run %(id)s started; its page follows it.") % {"id": run.pk})
            return redirect("training-run", slug=slug, run_id=run.pk)
    runs = list(TrainingRun.objects.filter(collection=collection).select_related("snapshot")[:50])
    for run in runs:
        run.report = run_report(run)
    judge_runs = list(MachineJudgeRun.objects.filter(collection=collection)[:JUDGE_RUNS_SHOWN])
    judge_active = any(run.status in MachineJudgeRun.ACTIVE for run in judge_runs)
    return render(request, "training/runs.html", {
        "collection": collection, "runs": runs, "promoted": promoted_version(collection=collection),
        "stop": _stopping(collection),
        "versions": model_versions(collection=collection)[:20], "form": form,
        "judge_runs": judge_runs, "judge_active": judge_active,
        "active": judge_active or any(run.status in TrainingRun.ACTIVE for run in runs),
    })


JUDGE_RUNS_SHOWN = 5


@login_required
@require_POST
def judge_now(request, slug: str):
    """Staff: the machine judge's grades from the model that serves (the base model before any
    promotion), by a worker; the training page follows it."""
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    try:
        run = request_served_judge(collection=collection, created_by=request.user)
    except JudgeRunAlreadyActive:
        messages.error(request, gettext("The machine judge is already queued or running; its row below follows it."))
    else:
        model = (gettext("model version %(id)s") % {"id": run.version_id} if run.version_id
                 else gettext("the base model"))
        messages.success(request, gettext("Machine judge queued with %(model)s.") % {"model": model})
    return redirect(f"{reverse('training-runs', args=[slug])}#machine-judge")


def _stopping(collection) -> dict:
    rows = stopping_rows(collection)
    target = RetrainPolicy.objects.filter(collection=collection).values_list("stop_width", flat=True).first()
    return {"rows": rows, "target": target, "enough": enough_judged(rows, target),
            "width": rows[-1].served_width if rows else None}


class RetrainPolicyForm(forms.Form):
    enabled = forms.BooleanField(label=_("Enabled"), required=False,
                                 help_text=_("retrain by itself on the schedule below"))
    every_hours = forms.IntegerField(label=_("Every (hours)"), min_value=1, max_value=24 * 90, initial=24,
                                     help_text=_("how often the check runs"))
    min_new_judgments = forms.IntegerField(label=_("New grades needed"), min_value=0, max_value=10_000_000,
                                           initial=500,
                                           help_text=_("a run starts only after this many new people's grades"))
    promotion_margin = forms.FloatField(label=_("Promotion margin"), min_value=-0.99, max_value=0.99,
                                        initial=DEFAULT_PROMOTION_MARGIN,
                                        help_text=_("dev NDCG@10 gain the gate's lower bound must clear"))
    stop_width = forms.FloatField(label=_("Target interval width"), required=False, min_value=0.001, max_value=1.0,
                                  help_text=_("“enough judged” once the served model's dev NDCG@10 interval is this "
                                              "narrow (empty: no target)"))
    train_params = forms.JSONField(label=_("Run settings (JSON)"), required=False, initial=dict,
                                   widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text='{"epochs": 3, "candidates": ["zero-shot", "bi-encoder", "fusion"]}')
    export_params = forms.JSONField(label=_("Export filters (JSON)"), required=False, initial=dict,
                                    widget=forms.Textarea(attrs={"rows": 2}), help_text='{"min_judgments": 2}')


@login_required
@require_http_methods(["GET", "POST"])
def retrain_schedule(request, slug: str):
    """Staff: the collection's retraining policy and its schedule."""
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    policy = RetrainPolicy.objects.filter(collection=collection).select_related("periodic_task__interval").first()
    initial = {} if policy is None else {
        "enabled": policy.enabled, "min_new_judgments": policy.min_new_judgments,
        "promotion_margin": policy.promotion_margin, "every_hours": every_hours_of(policy) or 24,
        "train_params": policy.params.get("train", {}), "export_params": policy.params.get("export", {}),
        "stop_width": policy.stop_width}
    form = RetrainPolicyForm(request.POST or None, initial=initial or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        candidate = policy or RetrainPolicy(collection=collection)
        candidate.enabled, candidate.min_new_judgments = data["enabled"], data["min_new_judgments"]
        candidate.promotion_margin = data["promotion_margin"]
        candidate.stop_width = data["stop_width"]
        candidate.params = {key: value for key, value in (("train", data["train_params"] or {}),
                                                           ("export", data["export_params"] or {})) if value}
        try:
            candidate.full_clean()
        except ValidationError as error:
            for field, messages_ in error.message_dict.items():
                form.add_error(None, f"{field}: {' '.join(messages_)}")
        else:
            candidate.save()
            sync_schedule(policy=candidate, every_hours=data["every_hours"])
            said = (gettext("Retraining on: checked every %(hours)s h, a run after %(n)s new grades.") if candidate.enabled
                    else gettext("Retraining off."))
            messages.success(request, said % {"hours": data["every_hours"], "n": candidate.min_new_judgments})
            return redirect("retrain-schedule", slug=slug)
    return render(request, "training/schedule.html", {"collection": collection, "form": form, "policy": policy,
                                                      "new_judgments": new_judgments_since_last_run(collection)})


@login_required
@require_POST
def serve_version(request, slug: str, version_id: int):
    """Staff: an earlier model version serves again (roll back), with a recorded reason."""
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    version = get_object_or_404(ModelVersion, pk=version_id, collection=collection)
    try:
        serve_version_again(version=version, reason=request.POST.get("reason", ""), user=request.user)
    except OverrideRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, gettext("Model version %(id)s serves again.") % {"id": version.pk})
    return redirect("training-runs", slug=slug)


@login_required
@require_GET
def training_run(request, slug: str, run_id: int):
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    run = _run_of(collection, run_id)
    return _render_run(request, run, OverrideForm())


@login_required
@require_POST
def override_training_run(request, slug: str, run_id: int):
    """Staff "Promote anyway": promote a finished run the gate did not promote, with a reason.
    Every refusal is shown on the run's page (400 for the input, 409 for the run's state)."""
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    run = _run_of(collection, run_id)
    form = OverrideForm(request.POST)
    if not form.is_valid():
        return _render_run(request, run, form, status=400)
    try:
        override_promotion(run=run, reason=form.cleaned_data["reason"], user=request.user)
    except OverrideRefused as error:
        run.refresh_from_db()  # another request may have promoted it meanwhile: show the run as it is
        form.add_error("reason" if isinstance(error, OverrideReasonError) else None, str(error))
        return _render_run(request, run, form, status=400 if isinstance(error, OverrideReasonError) else 409)
    messages.success(request, gettext("Training run %(id)s promoted by override.") % {"id": run.pk})
    return redirect("training-run", slug=slug, run_id=run.pk)


@login_required
@require_POST
def cancel_training_run(request, slug: str, run_id: int):
    collection = staff_collection(request.user, slug, STAFF_WHAT)
    services.request_cancel(run=get_object_or_404(TrainingRun, pk=run_id, collection=collection))
    return redirect("training-runs", slug=slug)


def _run_of(collection, run_id: int) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("snapshot", "collection"), pk=run_id,
                             collection=collection)


class OverrideForm(forms.Form):
    # The service checks the reason again (blank after stripping, length) with its own message.
    reason = forms.CharField(max_length=MAX_REASON_LENGTH, widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": _("A reason is required: say why this model should serve.")},
                             help_text=_("Why this model should serve although the gate did not promote it; "
                                         "kept on the run."))


def _render_run(request, run: TrainingRun, form: OverrideForm, *, status: int = 200):
    has_model = ModelVersion.objects.filter(run=run).exists()
    return render(request, "training/run.html", {
        "collection": run.collection, "run": run, "report": run_report(run), "form": form,
        "loss_chart": loss_chart(run.loss_curve),
        "can_override": run.status == TrainingRun.Status.DONE and not run.promoted and has_model,
    }, status=status)


# --- what a run's metrics say, in the current shape (issue 15) and the older one ---------------
def run_report(run: TrainingRun) -> dict:
    """The run page's figures: candidates, references, dev size, winner and decision. Runs recorded
    before the candidates existed (base/bm25/new/promoted/decision) are shown as two candidates.
    Names and sentences are in the viewer's language (training.wording); ``name`` stays as recorded."""
    metrics = run.metrics or {}
    winner = metrics.get("winner")
    if "candidates" in metrics:
        candidates = [_candidate(row, winner) for row in metrics.get("candidates") or []]
        references = [_reference(name, figures) for name, figures in (metrics.get("references") or {}).items()]
    else:
        candidates = [_candidate({"name": label, "kind": "cross-encoder", **metrics[key]}, None)
                      for key, label in (("base", "zero-shot base"), ("new", "fine-tuned")) if metrics.get(key)]
        if candidates and run.promoted:
            candidates[-1]["winner"] = True
        references = [_reference(name, metrics[name]) for name in ("bm25", "promoted") if metrics.get(name)]
    levels = [row["gate"].get("interval_level") for row in metrics.get("candidates") or [] if row.get("gate")]
    return {"candidates": candidates, "references": references, "dev_queries": dev_queries(metrics),
            "status": wording.status_name(run.status), "trigger": wording.status_name(run.trigger),
            "winner": winner, "winner_shown": wording.model_name(winner) if winner else None,
            "dev_source": wording.dev_source(metrics.get("dev_source") or ""),
            "decision": metrics.get("decision") or {}, "reason": wording.run_decision(run),
            "gate_reason": wording.gate_said(run),
            "interval_level": 100 * levels[0] if levels and levels[0] else None}


def _candidate(row: dict, winner: str | None) -> dict:
    gate = row.get("gate") or None
    return {
        "name": row.get("name", "?"), "shown": wording.model_name(row.get("name", "?")),
        "kind": wording.model_name(row["kind"]) if row.get("kind") else "",
        "ndcg": row.get("ndcg@10"), "interval": row.get("interval"), "seconds": row.get("seconds"),
        "note": wording.candidate_note(row.get("note") or ""),
        "winner": winner is not None and row.get("name") == winner,
        "gate": None if gate is None else {
            "branch": gate.get("branch", ""), "branch_shown": wording.branch_name(gate.get("branch", "")),
            "comparisons": [{"reference": wording.model_name(c.get("reference")),
                             "lower_bound": (c.get("interval") or [None])[0],
                             "difference": c.get("mean_difference"), "passes": c.get("passes")}
                            for c in gate.get("comparisons") or []],
        },
    }


def _reference(name: str, figures: dict) -> dict:
    label = {"bm25": "BM25", "promoted": gettext("promoted model")}.get(name) or wording.model_name(name)
    if figures.get("version") is not None:
        label = gettext("%(name)s (version %(version)s)") % {"name": label, "version": figures["version"]}
    return {"name": label, "ndcg": figures.get("ndcg@10"), "interval": figures.get("interval"),
            "queries": figures.get("queries")}


def dev_queries(metrics: dict) -> int | None:
    if metrics.get("dev_queries") is not None:
        return metrics["dev_queries"]
    return (metrics.get("new") or metrics.get("base") or {}).get("queries")


def _figure(value) -> str:
    return "–" if value is None else f"{value:.4f}"
