"""Routes of the quality pages and API (staff only)."""
from django.urls import path

import config.converters  # noqa: F401 -- registers <id:...>

from . import api, views

pages = [
    path("c/<slug:slug>/overview/", views.overview, name="collection-overview"),
    path("c/<slug:slug>/quality/", views.dashboard, name="quality-dashboard"),
    path("c/<slug:slug>/quality/recompute/", views.recompute, name="quality-recompute"),
    path("c/<slug:slug>/adjudication/", views.adjudication_queue, name="adjudication-queue"),
    path("c/<slug:slug>/adjudication/<id:query_id>/", views.adjudication_query, name="adjudication-query"),
]

api = [
    path("collections/<slug:slug>/quality/", api.QualityReportApi.as_view(), name="api-quality-report"),
    path("collections/<slug:slug>/adjudication/queries/<id:query_id>/", api.AdjudicationQueryApi.as_view(),
         name="api-adjudication-query"),
    path("collections/<slug:slug>/adjudications/", api.AdjudicationApi.as_view(), name="api-adjudications"),
    path("collections/<slug:slug>/gold/", api.GoldApi.as_view(), name="api-gold"),
]
