from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("imports/new/", views.import_new, name="import-new"),
    path("imports/<int:job_id>/", views.import_job, name="import-job"),
]
