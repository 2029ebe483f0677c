"""Routes of the judging pages and the judging API."""
from django.urls import path

from . import workbench_api, workbench_views

pages = [
    path("c/<slug:slug>/judge/", workbench_views.judge, name="judge"),
    path("c/<slug:slug>/guidelines/", workbench_views.guidelines, name="guidelines"),
    path("c/<slug:slug>/guidelines/acknowledge/", workbench_views.acknowledge_guidelines, name="acknowledge-guidelines"),
]

api = [
    path("collections/<slug:slug>/tasks/next/", workbench_api.NextTaskApi.as_view(), name="api-next-task"),
    path("collections/<slug:slug>/guidelines/acknowledge/", workbench_api.AcknowledgeGuidelineApi.as_view(),
         name="api-acknowledge-guidelines"),
    path("collections/<slug:slug>/pins/", workbench_api.PinApi.as_view(), name="api-pins"),
    path("tasks/<int:task_id>/", workbench_api.TaskApi.as_view(), name="api-task"),
    path("tasks/<int:task_id>/judgments/", workbench_api.JudgmentApi.as_view(), name="api-task-judgments"),
    path("tasks/<int:task_id>/annotations/", workbench_api.AnnotationApi.as_view(), name="api-task-annotations"),
    path("tasks/<int:task_id>/undo/", workbench_api.UndoApi.as_view(), name="api-task-undo"),
    path("tasks/<int:task_id>/finish/", workbench_api.FinishTaskApi.as_view(), name="api-task-finish"),
    path("tasks/<int:task_id>/release/", workbench_api.ReleaseTaskApi.as_view(), name="api-task-release"),
]
