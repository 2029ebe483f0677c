"""Staff pages for mining jobs: the list, one job's progress (polled), cancel; and the API."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import IsStaff, staff_required
from annotate.models import Collection
from config.errors import api_error

from . import selectors, services
from .models import MiningJob
from .pipeline import (
    DEFAULT_DEPTH,
    DEFAULT_NEGATIVES,
    METHODS,
    MiningParamsError,
    check_collection_settings,
)


class StartMiningForm(forms.Form):
    collection = forms.ModelChoiceField(label=_("Collection"), queryset=Collection.objects.order_by("slug"),
                                        to_field_name="slug", empty_label=None)
    method = forms.ChoiceField(label=_("Method"), choices=[(m, m) for m in METHODS], initial="hybrid",
                               help_text=_("hybrid: BM25 and the dense miner fused by rank"))
    depth = forms.IntegerField(label=_("Depth"), min_value=1, max_value=10_000, initial=DEFAULT_DEPTH,
                               help_text=_("documents retrieved per query"))
    negatives = forms.IntegerField(label=_("Negatives"), min_value=1, max_value=1000, initial=DEFAULT_NEGATIVES,
                                   help_text=_("hard negatives added per query after the false-negative guards"))


@staff_required("mining jobs")
@require_http_methods(["GET", "POST"])
def job_list(request):
    form = StartMiningForm(request.POST or None, initial={"collection": request.GET.get("collection")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.start_mining(collection=data["collection"], method=data["method"], depth=data["depth"],
                                        negatives=data["negatives"], created_by=request.user)
        except MiningParamsError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, gettext("Mining job %(id)s started.") % {"id": job.pk})
            return redirect("mining-job", job_id=job.pk)
    return render(request, "mining/jobs.html", {"jobs": selectors.recent_jobs(), "form": form})


class MiningSettingsForm(forms.Form):
    settings = forms.JSONField(label=_("Mining defaults (JSON)"), required=False,
                               widget=forms.Textarea(attrs={"rows": 6, "cols": 70}),
                               help_text=_("what every job and pre-mining of this collection starts from"))


@staff_required("mining settings")
@require_http_methods(["GET", "POST"])
def mining_settings(request, slug: str):
    """Staff: a collection's mining defaults, checked as a job would check them."""
    collection = get_object_or_404(Collection, slug=slug)
    form = MiningSettingsForm(request.POST or None, initial={"settings": collection.mining_settings or {}})
    if request.method == "POST" and form.is_valid():
        try:
            checked = check_collection_settings(form.cleaned_data["settings"] or {})
        except MiningParamsError as error:
            form.add_error("settings", str(error))
        else:
            Collection.objects.filter(pk=collection.pk).update(mining_settings=checked)
            messages.success(request, gettext("Mining defaults of %(slug)s saved.") % {"slug": collection.slug})
            return redirect("mining-settings", slug=slug)
    return render(request, "mining/settings.html", {"collection": collection, "form": form})


@staff_required("mining jobs")
@require_GET
def job_detail(request, job_id: int):
    job = get_object_or_404(MiningJob.objects.select_related("collection"), pk=job_id)
    return render(request, "mining/job.html", {"job": job, "progress": selectors.job_progress(job)})


@staff_required("mining jobs")
@require_GET
def job_progress(request, job_id: int):
    job = get_object_or_404(MiningJob.objects.select_related("collection"), pk=job_id)
    return JsonResponse(selectors.job_progress(job))


@staff_required("mining jobs")
@require_POST
def job_cancel(request, job_id: int):
    job = get_object_or_404(MiningJob, pk=job_id)
    services.cancel_mining(job=job)
    return redirect("mining-job", job_id=job.pk)


JobSerializer = inline_serializer("MiningJobProgress", fields={
    "id": serializers.IntegerField(), "collection": serializers.CharField(), "method": serializers.CharField(),
    "status": serializers.CharField(), "queries_total": serializers.IntegerField(),
    "queries_done": serializers.IntegerField(), "candidates_added": serializers.IntegerField(),
    "eta_seconds": serializers.FloatField(allow_null=True), "warnings": serializers.ListField(),
})


class StartMiningApi(APIView):
    """POST {"collection", "method", "depth"?, "negatives"?, "params"?}: start a mining job (staff)."""

    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        collection = serializers.SlugField()
        method = serializers.CharField()
        depth = serializers.IntegerField(required=False)
        negatives = serializers.IntegerField(required=False)
        params = serializers.DictField(required=False)

    @extend_schema(request=InputSerializer, responses={201: JobSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        collection = get_object_or_404(Collection, slug=data.validated_data["collection"])
        try:
            job = services.start_mining(
                collection=collection, method=data.validated_data["method"],
                depth=data.validated_data.get("depth"), negatives=data.validated_data.get("negatives"),
                params=data.validated_data.get("params"), created_by=request.user,
            )
        except MiningParamsError as exc:
            return api_error(str(exc))
        return Response(selectors.job_progress(job), status=status.HTTP_201_CREATED)


class MiningJobApi(APIView):
    """GET a mining job's progress (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(responses={200: JobSerializer})
    def get(self, request, job_id: int):
        job = get_object_or_404(MiningJob.objects.select_related("collection"), pk=job_id)
        return Response(selectors.job_progress(job))


class CancelMiningJobApi(APIView):
    """POST: cancel a mining job (staff); chunks already stored stay."""

    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={200: JobSerializer})
    def post(self, request, job_id: int):
        job = get_object_or_404(MiningJob.objects.select_related("collection"), pk=job_id)
        return Response(selectors.job_progress(services.cancel_mining(job=job)))
