"""Routes of the judging pages and the judging API."""
from django.urls import path

import config.converters  # noqa: F401 -- registers <id:...>

from . import api, pages

pages = [
    path("c/<slug:slug>/judge/", pages.judge, name="judge"),
    path("c/<slug:slug>/guidelines/", pages.guidelines, name="guidelines"),
    path("c/<slug:slug>/guidelines/acknowledge/", pages.acknowledge_guidelines, name="acknowledge-guidelines"),
    path("c/<slug:slug>/members/", pages.members_page, name="members"),
    path("c/<slug:slug>/members/<id:user_id>/remove/", pages.remove_member_page, name="member-remove"),
]

api = [
    path("collections/<slug:slug>/tasks/next/", api.NextTaskApi.as_view(), name="api-next-task"),
    path("collections/<slug:slug>/guidelines/acknowledge/", api.AcknowledgeGuidelineApi.as_view(),
         name="api-acknowledge-guidelines"),
    path("collections/<slug:slug>/pins/", api.PinApi.as_view(), name="api-pins"),
    path("tasks/<id:task_id>/", api.TaskApi.as_view(), name="api-task"),
    path("tasks/<id:task_id>/judgments/", api.JudgmentApi.as_view(), name="api-task-judgments"),
    path("tasks/<id:task_id>/annotations/", api.AnnotationApi.as_view(), name="api-task-annotations"),
    path("tasks/<id:task_id>/undo/", api.UndoApi.as_view(), name="api-task-undo"),
    path("tasks/<id:task_id>/finish/", api.FinishTaskApi.as_view(), name="api-task-finish"),
    path("tasks/<id:task_id>/release/", api.ReleaseTaskApi.as_view(), name="api-task-release"),
]
