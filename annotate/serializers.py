"""Output shapes shared by the collection and import APIs and the job page's status poll."""
from __future__ import annotations

from pathlib import Path

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Collection, ImportJob


class CollectionOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Collection
        fields = ("slug", "name", "description", "overlap_k", "lease_minutes", "guideline_version",
                  "judging_view", "judging_strategy", "task_size", "is_active", "created_at", "url")

    def get_url(self, collection: Collection) -> str:
        return reverse("api-collection", args=[collection.slug])


class TotalsSerializer(serializers.Serializer):
    documents = serializers.IntegerField()
    queries = serializers.IntegerField()
    candidates = serializers.IntegerField()
    judgments = serializers.IntegerField()


class CollectionDetailOutputSerializer(CollectionOutputSerializer):
    """A collection with its totals, which the view counts and hands over in the context."""

    totals = serializers.SerializerMethodField()

    class Meta(CollectionOutputSerializer.Meta):
        fields = (*CollectionOutputSerializer.Meta.fields, "totals")

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, collection: Collection) -> dict:
        return {key: value for key, value in self.context["totals"].items() if key != "collection"}


class ImportJobOutputSerializer(serializers.ModelSerializer):
    collection = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    files = serializers.SerializerMethodField()
    progress = serializers.FloatField(read_only=True)
    result = serializers.DictField(read_only=True, help_text="The collection's totals once done.")
    url = serializers.SerializerMethodField()
    page = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = ("id", "collection", "status", "files", "bytes_total", "bytes_done", "progress", "result", "error",
                  "created_by", "created_at", "started_at", "finished_at", "url", "page")

    def get_files(self, job: ImportJob) -> dict[str, list[str]]:
        """The file names per field; the server's paths are nobody's business."""
        return {field: [Path(p).name for p in (paths if isinstance(paths, list) else [paths])]
                for field, paths in (job.files or {}).items()}

    def get_url(self, job: ImportJob) -> str:
        return reverse("api-import-job", args=[job.pk])

    def get_page(self, job: ImportJob) -> str:
        return reverse("import-job", args=[job.pk])
