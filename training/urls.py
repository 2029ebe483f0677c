"""Routes of the training pages (search preview, runs, a run) and API (rerank, training runs, override)."""
from django.urls import path, re_path

import config.converters  # noqa: F401 -- registers <id:...>

from . import api, views

pages = [
    path("c/<slug:slug>/search/", views.search_preview, name="search-preview"),
    path("c/<slug:slug>/training/", views.training_runs, name="training-runs"),
    path("c/<slug:slug>/training/<id:run_id>/", views.training_run, name="training-run"),
    path("c/<slug:slug>/training/<id:run_id>/cancel/", views.cancel_training_run, name="training-run-cancel"),
    path("c/<slug:slug>/training/<id:run_id>/override/", views.override_training_run, name="training-run-override"),
    path("c/<slug:slug>/training/schedule/", views.retrain_schedule, name="retrain-schedule"),
    path("c/<slug:slug>/training/judge/", views.judge_now, name="machine-judge-now"),
    path("c/<slug:slug>/models/<id:version_id>/serve/", views.serve_version, name="model-version-serve"),
]

api = [
    # POST /api/rerank as documented, and /api/rerank/ like the other routes; no redirect for a POST.
    re_path(r"^rerank/?$", api.RerankApi.as_view(), name="api-rerank"),
    path("collections/<slug:slug>/training-runs/", api.StartTrainingRunApi.as_view(), name="api-training-run-start"),
    path("training-runs/<id:run_id>/", api.TrainingRunApi.as_view(), name="api-training-run"),
    path("training-runs/<id:run_id>/cancel/", api.CancelTrainingRunApi.as_view(), name="api-training-run-cancel"),
    path("training-runs/<id:run_id>/override/", api.OverrideTrainingRunApi.as_view(), name="api-training-run-override"),
]
