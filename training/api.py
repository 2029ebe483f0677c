"""The rerank API and the training-run API (progress, cancel, start, override)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import IsStaff, collection_for_member
from annotate.models import ExportSnapshot
from config.errors import ErrorSerializer, api_error
from config.fields import StrictText

from . import rerank as rerank_service
from . import services
from .config import TrainingParamsError
from .models import TrainingRun
from .override import (
    MAX_REASON_LENGTH,
    OverrideConflict,
    OverrideReasonError,
    override_promotion,
)


class RerankApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        query = StrictText(trim_whitespace=True, allow_blank=False, max_length=2000)
        documents = serializers.ListField(child=StrictText(trim_whitespace=False, allow_blank=False, max_length=100_000),
                                          min_length=1, max_length=rerank_service.MAX_DOCUMENTS)
        top_k = serializers.IntegerField(min_value=1, max_value=rerank_service.MAX_DOCUMENTS, required=False)
        collection = serializers.SlugField(required=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("Reranked", fields={
            "model": serializers.DictField(),
            "warnings": serializers.ListField(child=serializers.CharField(), help_text=(
                "What a reader of the order should know: the serving model ranked below BM25 on its run's dev "
                "queries (e.g. promoted by override), or it scores these documents practically flat.")),
            "scores": serializers.ListField(child=serializers.FloatField()),
            "results": serializers.ListField(child=serializers.DictField())})},
        summary="Score documents for a query with the promoted reranker (503 when none is promoted)",
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        collection = collection_for_member(request.user, values["collection"]) if "collection" in values else None
        try:
            result = rerank_service.rerank(query=values["query"], documents=values["documents"],
                                           top_k=values.get("top_k"), collection=collection)
        except rerank_service.NoPromotedModel as error:
            return api_error(str(error), status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(result)


def run_payload(run: TrainingRun) -> dict:
    """A run as the API shows it: its row, its whole ``metrics``, and beside them the parts of
    metrics a client reads most (as stored; None on a run recorded before they existed)."""
    metrics = run.metrics or {}
    return {
        "id": run.pk, "collection": run.collection.slug, "snapshot": run.snapshot_id, "status": run.status,
        "trigger": run.trigger, "step": run.step, "total_steps": run.total_steps, "loss": run.loss,
        "eta_seconds": run.eta_seconds, "metrics": metrics, "promoted": run.promoted,
        "candidates": metrics.get("candidates"), "references": metrics.get("references"),
        "dev_queries": metrics.get("dev_queries"), "winner": metrics.get("winner"),
        "decision": metrics.get("decision"),
        "cancel_requested": run.cancel_requested, "error": run.error,
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
    }


RunSerializer = inline_serializer("TrainingRun", fields={
    "id": serializers.IntegerField(), "collection": serializers.CharField(), "snapshot": serializers.IntegerField(),
    "status": serializers.CharField(), "trigger": serializers.CharField(), "step": serializers.IntegerField(),
    "total_steps": serializers.IntegerField(), "loss": serializers.FloatField(allow_null=True),
    "eta_seconds": serializers.FloatField(allow_null=True), "metrics": serializers.DictField(),
    "promoted": serializers.BooleanField(),
    "candidates": serializers.ListField(child=serializers.DictField(), allow_null=True,
                                        help_text="Every candidate with its dev figures, interval and gate result."),
    "references": serializers.DictField(allow_null=True,
                                        help_text="BM25 and the promoted model on the same dev queries."),
    "dev_queries": serializers.IntegerField(allow_null=True, help_text="Dev queries the gate saw."),
    "winner": serializers.CharField(allow_null=True, help_text="The candidate promoted (gate or override)."),
    "decision": serializers.DictField(allow_null=True, help_text="promoted, branch, reason, override_reason, ..."),
    "cancel_requested": serializers.BooleanField(), "error": serializers.CharField(),
    "created_at": serializers.DateTimeField(), "started_at": serializers.DateTimeField(allow_null=True),
    "finished_at": serializers.DateTimeField(allow_null=True),
})


class TrainingRunApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: RunSerializer}, summary="A training run's status, progress and metrics")
    def get(self, request, run_id: int):
        return Response(run_payload(get_object_or_404(TrainingRun.objects.select_related("collection"), pk=run_id)))


class CancelTrainingRunApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={200: RunSerializer}, summary="Cancel a pending or running training run")
    def post(self, request, run_id: int):
        run = get_object_or_404(TrainingRun.objects.select_related("collection"), pk=run_id)
        return Response(run_payload(services.request_cancel(run=run)))


class OverrideTrainingRunApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        # Blank and length are checked by the service, so the API and the page say the same.
        reason = StrictText(trim_whitespace=False, allow_blank=True,
                            help_text=f"Why promote although the gate did not (at most {MAX_REASON_LENGTH} "
                                      "characters).")

    @extend_schema(request=InputSerializer, responses={200: RunSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
                   summary="Promote a finished run the gate did not promote, with a recorded reason (staff)")
    def post(self, request, run_id: int):
        run = get_object_or_404(TrainingRun.objects.select_related("collection"), pk=run_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = override_promotion(run=run, reason=data.validated_data["reason"], user=request.user)
        except OverrideReasonError as error:
            return api_error(str(error), reason=[str(error)])
        except OverrideConflict as error:
            return api_error(str(error), status.HTTP_409_CONFLICT)
        return Response(run_payload(run))


class StartTrainingRunApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        snapshot = serializers.IntegerField(min_value=1)
        params = serializers.DictField(required=False)

    @extend_schema(request=InputSerializer, responses={201: RunSerializer},
                   summary="Start a training run on a listwise export snapshot (409 if one is active)")
    def post(self, request, slug: str):
        collection = collection_for_member(request.user, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = ExportSnapshot.objects.filter(pk=data.validated_data["snapshot"], collection=collection).first()
        if snapshot is None:
            missing = f"no export snapshot {data.validated_data['snapshot']} in {slug}"
            return api_error(f"snapshot: {missing}", snapshot=[missing])
        try:
            run = services.start_training_run(snapshot=snapshot, created_by=request.user,
                                              params=data.validated_data.get("params"))
        except TrainingParamsError as error:
            return api_error(f"params: {error}", params=[str(error)])
        except services.TrainingDataError as error:
            return api_error(f"snapshot: {error}", snapshot=[str(error)])
        except services.RunAlreadyActive as error:
            return api_error(str(error), status.HTTP_409_CONFLICT)
        return Response(run_payload(run), status=status.HTTP_201_CREATED)
