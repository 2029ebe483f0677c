"""Export surfaces on the web, staff only: a streaming download, and a REST job with its file.

Download: GET /c/<slug>/export/<format>/?<export parameters> streams the file as it is written
(and records it as a snapshot like every export). Compression on request: `?gzip=1` sends a
`.gz` attachment (application/gzip; the snapshot keeps the uncompressed file and its sha256);
otherwise a client sending `Accept-Encoding: gzip` gets the same file with `Content-Encoding: gzip`,
which it decompresses transparently. Anonymous callers are sent to the login page, everyone else
who is not staff gets 403, a bad parameter 400 with the reason.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import api_error

from ..access import IsStaff, staff_collection
from ..models import Collection, ExportSnapshot
from . import services
from .filters import FORMATS, SPLIT_CHOICES, ExportParamsError, check_format
from .writers import WRITERS

CONTROL_PARAMETERS = {"gzip"}
_GZIP = re.compile(r"(^|,)\s*gzip\s*(;\s*q\s*=\s*(?!0(\.0*)?\s*($|,))[0-9.]+)?\s*($|,)")


def accepts_gzip(header: str) -> bool:
    """`Accept-Encoding` lists gzip with a non-zero quality."""
    return bool(_GZIP.search(header.lower().replace(" ", "")))


def gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: a gzip header and trailer
    for chunk in chunks:
        compressed = compressor.compress(chunk)
        if compressed:
            yield compressed
    yield compressor.flush()


def _closing(inner: Iterator[bytes], outer: Iterator[bytes]) -> Iterator[bytes]:
    """`outer` (built on `inner`), closing `inner` when the response is closed early, so an
    interrupted download fails its snapshot instead of leaving it running."""
    try:
        yield from outer
    finally:
        inner.close()


# The splits as a reader names them; the values (and the API's) stay the codes.
SPLIT_NAMES = {"train": pgettext_lazy("split", "train"), "dev": pgettext_lazy("split", "dev"),
               "test": pgettext_lazy("split", "test"), "all": pgettext_lazy("split", "all")}


class ExportForm(forms.Form):
    """The export page's form: the format and the filters staff set most; every other parameter
    keeps its default (the API and `export_data` take them all)."""

    format = forms.ChoiceField(label=_("Format"), choices=[(f, f) for f in FORMATS], initial="listwise")
    split = forms.ChoiceField(label=_("Split"), choices=[(s, SPLIT_NAMES[s]) for s in SPLIT_CHOICES], initial="all")
    min_judgments = forms.IntegerField(label=_("Minimum grades per pair"), min_value=0, max_value=1000, initial=0,
                                       help_text=_("pairs with fewer people's grades are left out"))
    min_weight = forms.FloatField(label=_("Minimum weight"), min_value=0.0, max_value=1.0, initial=0.0,
                                  help_text=_("pairs whose label the annotator model is less sure of are left out"))
    only_with_positive = forms.BooleanField(label=_("Only with a positive"), required=False,
                                            help_text=_("only queries with a relevant candidate"))
    guideline_version = forms.CharField(label=_("Guideline version"), required=False, max_length=64,
                                        help_text=_("only grades made under this version"))

    def params(self) -> dict:
        data = self.cleaned_data
        params = {key: data[key] for key in ("split", "min_judgments", "min_weight", "only_with_positive")}
        if data.get("guideline_version"):
            params["guideline_version"] = data["guideline_version"]
        return params


@login_required
@require_http_methods(["GET", "POST"])
def exports(request, slug: str):
    """Staff: start an export job and see every snapshot, with its counts, sha256 and file."""
    collection = staff_collection(request.user, slug, "exports")
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = services.start_export_job(collection=collection, format=form.cleaned_data["format"],
                                                 params=form.params(), created_by=request.user)
        except ExportParamsError as error:
            form.add_error(error.name if error.name in form.fields else None, error.reason)
        else:
            messages.success(request, gettext("Export %(id)s (%(format)s) started; this page follows it.") % {
                "id": snapshot.pk, "format": snapshot.format})
            return redirect("exports", slug=slug)
    snapshots = list(ExportSnapshot.objects.filter(collection=collection).select_related("created_by")
                     .order_by("-created_at", "-pk")[:50])
    return render(request, "annotate/exports.html", {
        "collection": collection, "form": form, "snapshots": snapshots,
        "active": any(s.status in ExportSnapshot.ACTIVE for s in snapshots),
    })


@login_required
@require_GET
def download(request, slug: str, format: str):
    collection = staff_collection(request.user, slug, "exports")
    params = {key: request.GET.get(key) for key in request.GET if key not in CONTROL_PARAMETERS}
    try:
        check_format(format)
        compress_file = _flag(request.GET.get("gzip"), "gzip")
        snapshot = services.new_snapshot(collection=collection, format=format, params=params, created_by=request.user)
    except ExportParamsError as error:
        return HttpResponseBadRequest(f"{error}\n", content_type="text/plain; charset=utf-8")
    chunks = services.stream_export(snapshot)
    name = f"{collection.slug}-{snapshot.pk}.{WRITERS[format].extension}"
    content_type = "application/x-ndjson" if WRITERS[format].extension == "jsonl" else "text/plain; charset=utf-8"
    if compress_file:
        response = StreamingHttpResponse(_closing(chunks, gzip_chunks(chunks)), content_type="application/gzip")
        name += ".gz"
    elif accepts_gzip(request.headers.get("Accept-Encoding", "")):
        response = StreamingHttpResponse(_closing(chunks, gzip_chunks(chunks)), content_type=content_type)
        response["Content-Encoding"] = "gzip"
    else:
        response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Vary"] = "Accept-Encoding"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Export-Snapshot"] = str(snapshot.pk)
    return response


def _flag(value: str | None, name: str) -> bool:
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise ExportParamsError(name, gettext("must be 1 or 0, got %(value)r") % {"value": value})


def snapshot_payload(snapshot: ExportSnapshot, request=None) -> dict:
    from django.urls import reverse

    file_url = reverse("api-export-file", kwargs={"snapshot_id": snapshot.pk})
    return {
        "id": snapshot.pk, "collection": snapshot.collection.slug, "format": snapshot.format,
        "split": snapshot.split, "params": snapshot.params, "status": snapshot.status, "counts": snapshot.counts,
        "sha256": snapshot.sha256, "size_bytes": snapshot.size_bytes, "n_judgments": snapshot.n_judgments,
        "error": snapshot.error, "created_by": snapshot.created_by.username if snapshot.created_by else None,
        "created_at": snapshot.created_at, "finished_at": snapshot.finished_at,
        "file": request.build_absolute_uri(file_url) if request is not None else file_url,
    }


SnapshotSerializer = inline_serializer("ExportSnapshot", fields={
    "id": serializers.IntegerField(), "status": serializers.CharField(), "format": serializers.CharField(),
    "sha256": serializers.CharField(), "counts": serializers.DictField(), "file": serializers.CharField()})


class StartExportApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=FORMATS, default="listwise")
        params = serializers.DictField(required=False, default=dict)

    @extend_schema(request=InputSerializer, responses={202: SnapshotSerializer},
                   summary="Start an export job (a snapshot); poll it, then fetch its file")
    def post(self, request, slug: str):
        collection = get_object_or_404(Collection, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            snapshot = services.start_export_job(collection=collection, format=data.validated_data["format"],
                                                 params=data.validated_data["params"], created_by=request.user)
        except ExportParamsError as error:
            return api_error(str(error), params={error.name: [error.reason]})
        return Response(snapshot_payload(snapshot, request), status=status.HTTP_202_ACCEPTED)


class ExportSnapshotApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: SnapshotSerializer}, summary="An export snapshot: status, counts, sha256")
    def get(self, request, snapshot_id: int):
        snapshot = get_object_or_404(ExportSnapshot.objects.select_related("collection", "created_by"), pk=snapshot_id)
        return Response(snapshot_payload(snapshot, request))


class ExportFileApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={(200, "application/octet-stream"): bytes},
                   summary="The snapshot's file (409 until it is done)")
    def get(self, request, snapshot_id: int):
        snapshot = get_object_or_404(ExportSnapshot.objects.select_related("collection"), pk=snapshot_id)
        if snapshot.status != ExportSnapshot.Status.DONE:
            detail = gettext("export snapshot %(id)s is %(status)s") % {"id": snapshot.pk, "status": snapshot.status}
            if snapshot.error:
                detail += f": {snapshot.error}"
            return api_error(detail, status.HTTP_409_CONFLICT, status=snapshot.status)
        name = f"{snapshot.collection.slug}-{snapshot.pk}.{WRITERS[snapshot.format].extension}"
        response = FileResponse(open(snapshot.file_path, "rb"), as_attachment=True, filename=name)
        response["X-Export-Sha256"] = snapshot.sha256
        return response
