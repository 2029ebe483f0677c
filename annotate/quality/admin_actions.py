"""Admin actions on candidates: mark the selected ones gold with a grade, or unmark them."""
from __future__ import annotations

from django.contrib import admin, messages

from ..grades import GRADE_LABELS
from .gold import mark_gold, unmark_gold


def _mark_action(grade: int):
    def action(modeladmin, request, queryset):
        changed = mark_gold(candidates=list(queryset.values_list("pk", flat=True)), grade=grade)
        modeladmin.message_user(request, f"{changed} candidate(s) marked gold with grade {grade}.", messages.SUCCESS)

    action.__name__ = f"mark_gold_{grade}"
    return admin.action(description=f"Mark as gold, grade {grade} ({GRADE_LABELS[grade][0]})",
                        permissions=["change"])(action)


@admin.action(description="Unmark gold", permissions=["change"])
def unmark_gold_action(modeladmin, request, queryset):
    changed = unmark_gold(candidates=list(queryset.values_list("pk", flat=True)))
    modeladmin.message_user(request, f"{changed} candidate(s) are no longer gold.", messages.SUCCESS)


gold_actions = [_mark_action(grade) for grade in sorted(GRADE_LABELS)] + [unmark_gold_action]
