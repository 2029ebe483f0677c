"""Pages: the collections list, and the staff pages that import data and follow an import."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods

from .access import collections_visible_to, require_staff, staff_collection
from .forms import CollectionSettingsForm, ImportForm
from .importing import UploadRejected, start_import
from .models import ImportJob, Judgment
from .totals import totals_by_collection


@login_required
@require_GET
def home(request):
    collections = list(collections_visible_to(request.user))
    totals = totals_by_collection(collections)
    mine = own_grades(request.user, collections)
    rows = [{"collection": collection, "totals": totals[collection.pk], "mine": mine.get(collection.pk, {})}
            for collection in collections]
    return render(request, "annotate/home.html", {"rows": rows})


def own_grades(user, collections) -> dict[int, dict]:
    """{collection id: {"grades", "today"}}: the user's own standing grades -- what an annotator's
    home shows, instead of the collection's judgment total, which counts imported reference labels."""
    from django.db.models import Count, Q
    from django.utils import timezone

    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (Judgment.objects.standing().filter(annotator=user, collection__in=collections).values("collection_id")
            .annotate(grades=Count("pk"), today=Count("pk", filter=Q(updated_at__gte=start_of_day))))
    return {row["collection_id"]: row for row in rows}


@login_required
@require_http_methods(["GET", "POST"])
def collection_settings(request, slug: str | None = None):
    """Staff: create a collection, or edit one's judging rules."""
    collection = staff_collection(request.user, slug, gettext("collection settings")) if slug else None
    if collection is None:
        require_staff(request.user, gettext("creating collections"))
    form = CollectionSettingsForm(request.POST or None, instance=collection)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, (gettext("Collection %(slug)s saved.") if collection else gettext("Collection %(slug)s created."))
                         % {"slug": saved.slug})
        return redirect("collection-settings", slug=saved.slug) if collection else redirect(
            "collection-overview", slug=saved.slug)
    return render(request, "annotate/collection_settings.html", {"collection": collection, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def import_new(request):
    require_staff(request.user, gettext("importing"))
    form = ImportForm(request.POST or None, request.FILES or None,
                      initial={"collection": request.GET.get("collection", "")})
    if request.method == "POST" and form.is_valid():
        try:
            job = start_import(collection_slug=form.cleaned_data["collection"], files=form.files_for_import(),
                               created_by=request.user)
        except UploadRejected as rejected:
            for field, messages in rejected.errors.items():
                for message in messages:
                    form.add_error(None if field not in form.fields else field, message)
        else:
            return redirect("import-job", job_id=job.pk)
    return render(request, "annotate/import_new.html", {"form": form})


@login_required
@require_GET
def import_job(request, job_id: int):
    require_staff(request.user, gettext("importing"))
    job = get_object_or_404(ImportJob.objects.select_related("collection", "created_by"), pk=job_id)
    return render(request, "annotate/import_job.html", {
        "job": job, "status_url": reverse("api-import-job", args=[job.pk]),
        "finished": job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED),
        "file_kinds": [_file_kind(name) for name in job.files],
    })


def _file_kind(name: str) -> str:
    """An uploaded file's kind as the import form names it ("corpus" -> "Corpus", in the reader's language)."""
    field = ImportForm.base_fields.get(name)
    return str(field.label) if field else name
