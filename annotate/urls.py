"""Routes of the collections list, the import pages and the collections/import API (under /api/)."""
from django.urls import path

import config.converters  # noqa: F401 -- registers <id:...>

from . import api, views

pages = [
    path("", views.home, name="home"),
    path("collections/new/", views.collection_settings, name="collection-new"),
    path("c/<slug:slug>/settings/", views.collection_settings, name="collection-settings"),
    path("imports/new/", views.import_new, name="import-new"),
    path("imports/<id:job_id>/", views.import_job, name="import-job"),
]

api = [
    path("collections/", api.CollectionListApi.as_view(), name="api-collections"),
    path("collections/<slug:slug>/", api.CollectionDetailApi.as_view(), name="api-collection"),
    path("collections/<slug:slug>/imports/", api.ImportStartApi.as_view(), name="api-collection-imports"),
    path("imports/<id:job_id>/", api.ImportJobApi.as_view(), name="api-import-job"),
]
