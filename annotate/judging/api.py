"""The judging API: the same rules as the judging page (membership, own tasks only, blind)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ErrorSerializer, api_error
from config.fields import StrictInteger

from ..access import IsStaff, collection_for_member, is_member
from ..models import GRADE_MAX, GRADE_MIN, Candidate, GuidelineAcknowledgement, Query
from . import assignment, selectors, services

TaskSerializer = inline_serializer(
    "Task",
    fields={
        "task": serializers.IntegerField(),
        "status": serializers.CharField(),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "pinned": serializers.BooleanField(),
        "collection": serializers.DictField(),
        "query": serializers.DictField(),
        "candidates": serializers.ListField(child=serializers.DictField()),
        "progress": serializers.DictField(),
        "language": serializers.CharField(),
    },
)


def _candidate_state(judgment) -> dict:
    standing = judgment is not None and not judgment.withdrawn
    return {
        "candidate": judgment.candidate_id if judgment else None,
        "grade": judgment.grade if standing else None,
        "skipped": bool(standing and judgment.skipped),
        "skip_reason": judgment.skip_reason if standing else "",
        "flagged": bool(judgment and judgment.flagged),
        "note": judgment.note if judgment else "",
        "withdrawn": bool(judgment and judgment.withdrawn),
    }


def _candidate_in(lease, candidate_id: int) -> Candidate | None:
    """A reference to a candidate of the task, without reading it: a lease's items are candidates of
    its query (assignment hands out nothing else), and the judging service re-checks the lease under
    the query's lock before it writes anything."""
    if candidate_id not in lease.items:
        return None
    return Candidate(pk=candidate_id, query_id=lease.query_id, collection_id=lease.collection_id)


class NextTaskApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: TaskSerializer, 204: OpenApiResponse(description="nothing left to judge"),
                   403: ErrorSerializer, 404: ErrorSerializer},
        summary="Get (or resume) the caller's next task in a collection",
    )
    def post(self, request, slug: str):
        collection = collection_for_member(request.user, slug)
        if selectors.needs_acknowledgement(request.user, collection):
            return api_error(
                _("acknowledge guideline version %(version)s before judging (POST %(url)s)")
                % {"version": collection.guideline_version, "url": f"/api/collections/{slug}/guidelines/acknowledge/"},
                status.HTTP_403_FORBIDDEN,
            )
        lease = assignment.next_task(collection=collection, annotator=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(selectors.task_payload(lease, language=request.LANGUAGE_CODE))


class AcknowledgeGuidelineApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: inline_serializer("Acknowledged", fields={"version": serializers.CharField()})},
                   summary="Acknowledge the collection's current guideline version")
    def post(self, request, slug: str):
        collection = collection_for_member(request.user, slug)
        GuidelineAcknowledgement.objects.get_or_create(user=request.user, version=collection.guideline_version)
        return Response({"version": collection.guideline_version})


class TaskApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: TaskSerializer, 404: ErrorSerializer}, summary="One of the caller's tasks")
    def get(self, request, task_id: int):
        lease = selectors.own_lease(request.user, task_id)
        return Response(selectors.task_payload(lease, language=request.LANGUAGE_CODE))


class JudgmentApi(APIView):
    """Save one grade (or skip) at once. Repeat the same idempotency_key to retry safely."""

    permission_classes = [permissions.IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        candidate = StrictInteger()
        grade = StrictInteger(min_value=GRADE_MIN, max_value=GRADE_MAX, allow_null=True, required=False)
        skipped = serializers.BooleanField(required=False, default=False)
        skip_reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=services.MAX_SKIP_REASON_CHARS)
        note = serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_NOTE_CHARS)
        flagged = serializers.BooleanField(required=False)
        seconds_spent = serializers.FloatField(required=False, min_value=0, max_value=services.MAX_SECONDS_PER_ACTION)
        idempotency_key = serializers.CharField(max_length=services.MAX_IDEMPOTENCY_KEY_CHARS)

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("Recorded", fields={
            "judgment": serializers.DictField(), "created": serializers.BooleanField()}),
            400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
        summary="Grade or skip a candidate of the caller's task",
    )
    def post(self, request, task_id: int):
        found = _task_candidate(request, task_id, self.InputSerializer)
        if isinstance(found, Response):
            return found
        data, candidate = found
        try:
            recorded = services.safe_record(
                annotator=request.user, candidate=candidate, grade=data.get("grade"),
                skipped=data["skipped"], skip_reason=data["skip_reason"], note=data.get("note"),
                flagged=data.get("flagged"), seconds_spent=data.get("seconds_spent"),
                idempotency_key=data["idempotency_key"],
            )
        except (services.NotInTask, services.IdempotencyConflict) as exc:
            return api_error(str(exc), status.HTTP_409_CONFLICT)
        except services.JudgingError as exc:
            return api_error(str(exc))
        # No progress figures here: saving a grade is the hot path, and the page counts for itself.
        return Response({"judgment": _candidate_state(recorded.judgment), "created": recorded.created})


class AnnotationApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        candidate = StrictInteger()
        note = serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_NOTE_CHARS)
        flagged = serializers.BooleanField(required=False)

    @extend_schema(request=InputSerializer, responses={200: inline_serializer("Annotated", fields={"judgment": serializers.DictField()}),
                                                      400: ErrorSerializer, 404: ErrorSerializer},
                   summary="Set the note or flag of a graded candidate")
    def post(self, request, task_id: int):
        found = _task_candidate(request, task_id, self.InputSerializer)
        if isinstance(found, Response):
            return found
        data, candidate = found
        try:
            judgment = services.annotate_candidate(annotator=request.user, candidate=candidate,
                                                  note=data.get("note"), flagged=data.get("flagged"))
        except services.JudgingError as exc:
            return api_error(str(exc))
        return Response({"judgment": _candidate_state(judgment)})


class UndoApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        idempotency_key = serializers.CharField(max_length=services.MAX_IDEMPOTENCY_KEY_CHARS)

    @extend_schema(request=InputSerializer, responses={200: inline_serializer("Undone", fields={
        "judgment": serializers.DictField(allow_null=True), "progress": serializers.DictField()}), 400: ErrorSerializer, 404: ErrorSerializer},
        summary="Undo the caller's last grade in this task")
    def post(self, request, task_id: int):
        lease = selectors.own_lease(request.user, task_id)
        data = _valid(self.InputSerializer, request.data)
        if isinstance(data, Response):
            return data
        try:
            judgment = services.undo_last(annotator=request.user, lease=lease, idempotency_key=data["idempotency_key"])
        except services.JudgingError as exc:
            return api_error(str(exc), status.HTTP_409_CONFLICT)
        lease.refresh_from_db()
        return Response({"judgment": _candidate_state(judgment) if judgment else None, "progress": selectors.progress(lease)})


class FinishTaskApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: inline_serializer("Finished", fields={"status": serializers.CharField()}),
                                            409: ErrorSerializer, 404: ErrorSerializer},
                   summary="Finish the task (every candidate graded or skipped)")
    def post(self, request, task_id: int):
        return _change_task(request, task_id, assignment.finish_task)


class ReleaseTaskApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: inline_serializer("Released", fields={"status": serializers.CharField()}),
                                            409: ErrorSerializer, 404: ErrorSerializer},
                   summary="Give the task back; grades already given stay")
    def post(self, request, task_id: int):
        return _change_task(request, task_id, assignment.release_task)


class PinApi(APIView):
    """Staff pin a query to an annotator: it comes first in their queue and does not expire."""

    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        query = serializers.CharField(help_text="the query's external id")
        annotator = serializers.CharField(help_text="the annotator's username")

    @extend_schema(request=InputSerializer, responses={201: inline_serializer("Pinned", fields={"task": serializers.IntegerField()}),
                                                      400: ErrorSerializer, 404: ErrorSerializer},
                   summary="Pin a query to an annotator (staff)")
    def post(self, request, slug: str):
        collection = collection_for_member(request.user, slug)
        data = _valid(self.InputSerializer, request.data)
        if isinstance(data, Response):
            return data
        query = get_object_or_404(Query, collection=collection, external_id=data["query"])
        user = get_user_model().objects.filter(username=data["annotator"]).first()
        if user is None or not is_member(user, collection):
            return api_error(_("%(annotator)s is not a member of %(collection)s")
                             % {"annotator": repr(data["annotator"]), "collection": collection.slug})
        try:
            lease = assignment.pin_query(query=query, annotator=user)
        except assignment.AssignmentError as exc:
            return api_error(str(exc))
        return Response({"task": lease.pk}, status=status.HTTP_201_CREATED)


def _task_candidate(request, task_id: int, serializer_class):
    """(validated input, candidate) for a request about one candidate of the caller's task, or the
    error Response: 404 for someone else's task or a candidate outside it, 400 for bad input."""
    lease = selectors.own_lease_items(request.user, task_id)
    data = _valid(serializer_class, request.data)
    if isinstance(data, Response):
        return data
    candidate = _candidate_in(lease, data["candidate"])
    if candidate is None:
        return api_error(_("candidate is not part of this task"), status.HTTP_404_NOT_FOUND)
    return data, candidate


def _change_task(request, task_id: int, change) -> Response:
    """Finish or release one of the caller's tasks; a refused change is a 409 with the reason."""
    lease = selectors.own_lease(request.user, task_id)
    try:
        lease = change(lease=lease)
    except assignment.AssignmentError as exc:
        return api_error(str(exc), status.HTTP_409_CONFLICT)
    return Response({"status": lease.status})


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    reasons = "; ".join(
        f"{field}: {' '.join(str(m) for m in messages)}" for field, messages in serializer.errors.items()
    )
    return api_error(reasons)
