"""Routes of the collections and import API (under /api/)."""
from django.urls import path

from . import api

urlpatterns = [
    path("collections/", api.CollectionListApi.as_view(), name="api-collections"),
    path("collections/<slug:slug>/", api.CollectionDetailApi.as_view(), name="api-collection"),
    path("collections/<slug:slug>/imports/", api.ImportStartApi.as_view(), name="api-collection-imports"),
    path("imports/<int:job_id>/", api.ImportJobApi.as_view(), name="api-import-job"),
]
