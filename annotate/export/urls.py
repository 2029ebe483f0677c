"""Export routes (staff only): the streaming download page and the export job API (under /api/)."""
from django.urls import path

from . import views

pages = [
    path("c/<slug:slug>/export/<str:format>/", views.download, name="export-download"),
]

api = [
    path("collections/<slug:slug>/exports/", views.StartExportApi.as_view(), name="api-export-start"),
    path("exports/<int:snapshot_id>/", views.ExportSnapshotApi.as_view(), name="api-export"),
    path("exports/<int:snapshot_id>/file/", views.ExportFileApi.as_view(), name="api-export-file"),
]
