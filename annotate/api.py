"""The collections API and the import API (staff): input serializer -> one service call -> output."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import generics, permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .access import IsStaff, collections_visible_to
from .importing import UploadRejected, start_import
from .models import ImportJob
from .serializers import (
    CollectionDetailOutputSerializer,
    CollectionOutputSerializer,
    ImportJobOutputSerializer,
)


class CollectionListApi(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = CollectionOutputSerializer

    def get_queryset(self):
        return collections_visible_to(self.request.user).order_by("slug")

    @extend_schema(summary="Collections the caller can see (staff: all; annotators: their own)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CollectionDetailApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: CollectionDetailOutputSerializer, 404: OpenApiResponse(description="not visible")},
                   summary="A collection with its totals")
    def get(self, request, slug: str):
        collection = get_object_or_404(collections_visible_to(request.user), slug=slug)
        totals = selectors.collection_totals(collection)
        return Response(CollectionDetailOutputSerializer(collection, context={"totals": totals}).data)


class ImportStartApi(APIView):
    """Upload files into a collection (created if the slug is new); a worker imports them."""

    permission_classes = [IsStaff]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="ImportUpload")
    class InputSerializer(serializers.Serializer):
        # Empty files are let through to the service, whose message names the file.
        corpus = serializers.FileField(required=False, allow_empty_file=True)
        queries = serializers.FileField(required=False, allow_empty_file=True)
        qrels = serializers.FileField(required=False, allow_empty_file=True)
        run = serializers.FileField(required=False, allow_empty_file=True)
        labels = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False)
        clicks = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False,
                                       help_text="click logs (JSONL, one search per line; README, Data formats)")

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={202: ImportJobOutputSerializer,
                   400: OpenApiResponse(description='bad input: {field: [reason]}, e.g. '
                                                    '{"qrels": ["qrels.tsv: empty file"]}')},
        summary="Start an import (staff); poll the job's url until status is done or failed",
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = start_import(collection_slug=slug, files=dict(data.validated_data), created_by=request.user)
        except UploadRejected as rejected:
            errors = {("non_field_errors" if field == "__all__" else field): messages
                      for field, messages in rejected.errors.items()}
            raise serializers.ValidationError(errors) from None
        return Response(ImportJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportJobApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: ImportJobOutputSerializer}, summary="An import job's status and progress (staff)")
    def get(self, request, job_id: int):
        job = get_object_or_404(ImportJob.objects.select_related("collection", "created_by"), pk=job_id)
        return Response(ImportJobOutputSerializer(job).data)
