"""Admin: training runs, model versions, machine judge runs, and retrain policies with their beat schedule.

Saving a RetrainPolicy creates (or refreshes) its django-celery-beat PeriodicTask; the schedule
itself (interval or crontab) is edited on that PeriodicTask, linked from the policy.
"""
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from . import registry, services
from .judge_runs import JudgeRunAlreadyActive, request_served_judge
from .models import MachineJudgeRun, ModelVersion, RetrainPolicy, TrainingRun
from .retraining import sync_schedule


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "collection", "status", "trigger", "step", "total_steps", "loss", "promoted", "created_at")
    list_filter = ("status", "trigger", "collection")
    readonly_fields = [f.name for f in TrainingRun._meta.fields if f.name not in ("cancel_requested",)]
    actions = ["cancel_runs"]

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        for run in queryset:
            services.request_cancel(run=run)
        self.message_user(request, f"asked {queryset.count()} run(s) to stop")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "collection", "is_promoted", "path", "created_at", "promoted_at")
    list_filter = ("collection", "is_promoted")
    readonly_fields = ("collection", "run", "path", "metrics", "is_promoted", "created_at", "promoted_at")
    actions = ["promote_version"]

    @admin.action(description="Promote (serve and mine with) the selected version")
    def promote_version(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "select exactly one version to promote", messages.ERROR)
            return
        registry.promote(version=queryset.get())
        self.message_user(request, "promoted")


@admin.register(MachineJudgeRun)
class MachineJudgeRunAdmin(admin.ModelAdmin):
    list_display = ("id", "collection", "version", "status", "created_at", "finished_at")
    list_filter = ("status", "collection")
    readonly_fields = [f.name for f in MachineJudgeRun._meta.fields]
    actions = ["judge_again"]

    def has_add_permission(self, request):
        return False  # asked for with the action, the training page or a promotion: never typed in

    @admin.action(description="Judge the selected runs' collections again with the model that serves")
    def judge_again(self, request, queryset):
        for collection in {run.collection for run in queryset.select_related("collection")}:
            try:
                request_served_judge(collection=collection, created_by=request.user)
            except JudgeRunAlreadyActive as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"machine judge queued for {collection}")


@admin.register(RetrainPolicy)
class RetrainPolicyAdmin(admin.ModelAdmin):
    list_display = ("collection", "enabled", "min_new_judgments", "promotion_margin", "schedule")
    readonly_fields = ("schedule",)
    exclude = ("periodic_task",)

    @admin.display(description="beat schedule")
    def schedule(self, policy):
        if policy.periodic_task_id is None:
            return "created on save"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[policy.periodic_task_id])
        return format_html('<a href="{}">{}</a>', url, policy.periodic_task)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        sync_schedule(policy=obj)
