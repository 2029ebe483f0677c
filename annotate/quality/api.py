"""The quality API (staff only): the report (or a subset's figures), adjudication, gold marks."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import api_error

from ..access import IsStaff
from ..grades import GRADE_MAX, GRADE_MIN
from ..models import AgreementReport, Candidate, Collection, Query
from .adjudication import MAX_REASON_CHARS, AdjudicationError, adjudicate, query_sheet
from .gold import mark_gold, unmark_gold
from .report import compute_report
from .scope import AgreementScope, ScopeError

ErrorSerializer = inline_serializer("QualityError", fields={"detail": serializers.CharField()})
SCOPE_PARAMETERS = [
    OpenApiParameter("query", str, description="a query's external id"),
    OpenApiParameter("annotators", str, description="two usernames, comma-separated"),
    OpenApiParameter("since", str, description="YYYY-MM-DD or ISO date-time (judgment's updated_at)"),
    OpenApiParameter("until", str, description="YYYY-MM-DD or ISO date-time, included"),
    OpenApiParameter("guideline_version", str),
]




def _report_json(report) -> dict | None:
    if report is None:
        return None
    return {"id": report.pk, "created_at": report.created_at.isoformat(), "n_judgments": report.n_judgments,
            "scope": report.scope, "overall": report.overall, "per_annotator": report.per_annotator,
            "per_pair": report.per_pair, "per_query": report.per_query, "seconds": report.seconds}


class QualityReportApi(APIView):
    """The latest kept report; with any subset filter, that subset's figures computed now (not kept)."""

    permission_classes = [IsStaff]

    @extend_schema(parameters=SCOPE_PARAMETERS,
                   responses={200: inline_serializer("QualityReport", fields={"report": serializers.DictField(allow_null=True)}),
                              400: ErrorSerializer, 404: ErrorSerializer},
                   summary="Agreement and quality report of a collection (staff)")
    def get(self, request, slug: str):
        collection = get_object_or_404(Collection, slug=slug)
        filters = {name: request.query_params.get(name) for name in
                   ("query", "annotators", "since", "until", "guideline_version") if request.query_params.get(name)}
        if not filters:
            return Response({"report": _report_json(AgreementReport.objects.latest_for(collection))})
        try:
            scope = AgreementScope.parse(**filters)
            data = compute_report(collection, scope=scope, bootstrap=200)
        except ScopeError as error:
            return api_error(str(error))
        return Response({"report": {"id": None, **data}})


class AdjudicationQueryApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: inline_serializer("AdjudicationSheet", fields={
        "query": serializers.DictField(), "annotators": serializers.ListField(child=serializers.CharField()),
        "candidates": serializers.ListField(child=serializers.DictField())}), 404: ErrorSerializer},
        summary="Everyone's grades and notes on a query's candidates, side by side (staff)")
    def get(self, request, slug: str, query_id: int):
        query = get_object_or_404(Query, pk=query_id, collection__slug=slug)
        annotators, sheets = query_sheet(query)
        return Response({
            "query": {"id": query.pk, "external_id": query.external_id, "text": query.text},
            "annotators": annotators,
            "candidates": [{
                "candidate": sheet.candidate.pk,
                "doc_id": sheet.candidate.document.external_id,
                "title": sheet.candidate.document.title,
                "text": sheet.candidate.document.text,
                "is_gold": sheet.candidate.is_gold,
                "gold_grade": sheet.candidate.gold_grade,
                "spread": sheet.spread,
                "judgments": [{"annotator": c.annotator, "is_simulated": c.is_simulated, "grade": c.grade,
                               "skipped": c.skipped, "skip_reason": c.skip_reason, "note": c.note,
                               "flagged": c.flagged} for c in sheet.cells],
                "final": _decision(sheet.final),
                "history": [_decision(d) for d in sheet.history],
            } for sheet in sheets],
        })


def _decision(decision) -> dict | None:
    if decision is None:
        return None
    return {"id": decision.pk, "grade": decision.grade, "reason": decision.reason,
            "decided_by": decision.decided_by.username, "created_at": decision.created_at.isoformat()}


class AdjudicationApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        candidate = serializers.IntegerField()
        grade = serializers.IntegerField(min_value=GRADE_MIN, max_value=GRADE_MAX)
        reason = serializers.CharField(max_length=MAX_REASON_CHARS)

    @extend_schema(request=InputSerializer, responses={201: inline_serializer("Adjudicated", fields={
        "adjudication": serializers.DictField()}), 400: ErrorSerializer, 404: ErrorSerializer},
        summary="Set a candidate's final grade with a reason (staff)")
    def post(self, request, slug: str):
        collection = get_object_or_404(Collection, slug=slug)
        data = _valid(self.InputSerializer, request.data)
        if isinstance(data, Response):
            return data
        candidate = Candidate.objects.filter(pk=data["candidate"], collection=collection).first()
        if candidate is None:
            return api_error(_("candidate %(candidate)s is not in collection %(collection)s")
                             % {"candidate": data["candidate"], "collection": collection.slug}, status.HTTP_404_NOT_FOUND)
        try:
            decision = adjudicate(candidate=candidate, grade=data["grade"], reason=data["reason"], decided_by=request.user)
        except AdjudicationError as error:
            return api_error(str(error))
        return Response({"adjudication": _decision(decision)}, status=status.HTTP_201_CREATED)


class GoldApi(APIView):
    """Mark (grade 0..3) or unmark (grade null) candidates as gold, named by external ids."""

    permission_classes = [IsStaff]

    class ItemSerializer(serializers.Serializer):
        query_id = serializers.CharField()
        doc_id = serializers.CharField()
        grade = serializers.IntegerField(min_value=GRADE_MIN, max_value=GRADE_MAX, allow_null=True)

    class InputSerializer(serializers.Serializer):
        items = serializers.ListField(child=serializers.DictField(), allow_empty=False, max_length=10000)

    @extend_schema(request=InputSerializer, responses={200: inline_serializer("GoldMarked", fields={
        "marked": serializers.IntegerField(), "unmarked": serializers.IntegerField()}), 400: ErrorSerializer},
        summary="Mark candidates as gold with a grade, or unmark them (staff)")
    def post(self, request, slug: str):
        collection = get_object_or_404(Collection, slug=slug)
        data = _valid(self.InputSerializer, request.data)
        if isinstance(data, Response):
            return data
        items = []
        for number, raw in enumerate(data["items"]):
            item = self.ItemSerializer(data=raw)
            if not item.is_valid():
                return api_error(f"items[{number}]: " + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in item.errors.items()))
            items.append(item.validated_data)
        pairs = dict(
            ((q, d), pk) for pk, q, d in Candidate.objects.filter(
                collection=collection, query__external_id__in={i["query_id"] for i in items},
                document__external_id__in={i["doc_id"] for i in items},
            ).values_list("pk", "query__external_id", "document__external_id")
        )
        for number, item in enumerate(items):
            if (item["query_id"], item["doc_id"]) not in pairs:
                return api_error(f"items[{number}]: " + _("(%(query)s, %(doc)s) is not a candidate of %(collection)s")
                                 % {"query": item["query_id"], "doc": item["doc_id"], "collection": collection.slug})
        marked = unmarked = 0
        for item in items:
            pk = pairs[(item["query_id"], item["doc_id"])]
            if item["grade"] is None:
                unmarked += unmark_gold(candidates=[pk])
            else:
                marked += mark_gold(candidates=[pk], grade=item["grade"])
        return Response({"marked": marked, "unmarked": unmarked})


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    return api_error("; ".join(f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in serializer.errors.items()))
