"""Export routes (staff only): the streaming download page and the export job API."""
from django.urls import path

from . import views

urlpatterns = [
    path("c/<slug:slug>/export/<str:format>/", views.download, name="export-download"),
    path("api/collections/<slug:slug>/exports/", views.StartExportApi.as_view(), name="api-export-start"),
    path("api/exports/<int:snapshot_id>/", views.ExportSnapshotApi.as_view(), name="api-export"),
    path("api/exports/<int:snapshot_id>/file/", views.ExportFileApi.as_view(), name="api-export-file"),
]
