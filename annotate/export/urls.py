"""Export routes (staff only): the streaming download page and the export job API (under /api/)."""
from django.urls import path

import config.converters  # noqa: F401 -- registers <id:...>

from . import views

pages = [
    path("c/<slug:slug>/exports/", views.exports, name="exports"),
    path("c/<slug:slug>/export/<str:format>/", views.download, name="export-download"),
]

api = [
    path("collections/<slug:slug>/exports/", views.StartExportApi.as_view(), name="api-export-start"),
    path("exports/<id:snapshot_id>/", views.ExportSnapshotApi.as_view(), name="api-export"),
    path("exports/<id:snapshot_id>/file/", views.ExportFileApi.as_view(), name="api-export-file"),
]
