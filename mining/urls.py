"""Mining routes: staff pages under /mining/ and the API (mounted under /api/ by config/api_urls.py)."""
from django.urls import path

import config.converters  # noqa: F401 -- registers <id:...>

from . import views

pages = [
    path("mining/jobs/", views.job_list, name="mining-jobs"),
    path("c/<slug:slug>/mining/settings/", views.mining_settings, name="mining-settings"),
    path("mining/jobs/<id:job_id>/", views.job_detail, name="mining-job"),
    path("mining/jobs/<id:job_id>/progress.json", views.job_progress, name="mining-job-progress"),
    path("mining/jobs/<id:job_id>/cancel/", views.job_cancel, name="mining-job-cancel"),
]

api = [
    path("mining/jobs/", views.StartMiningApi.as_view(), name="api-mining-jobs"),
    path("mining/jobs/<id:job_id>/", views.MiningJobApi.as_view(), name="api-mining-job"),
    path("mining/jobs/<id:job_id>/cancel/", views.CancelMiningJobApi.as_view(), name="api-mining-job-cancel"),
]
