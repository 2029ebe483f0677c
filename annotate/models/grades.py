"""The grading scale, in the database's terms (choices and validators for grade fields)."""
from django.core.validators import MaxValueValidator, MinValueValidator

from ..grades import GRADE_LABELS, GRADE_MAX, GRADE_MIN

GRADE_CHOICES = [(grade, f"{grade} – {en} / {zh}") for grade, (en, zh) in GRADE_LABELS.items()]
grade_validators = [MinValueValidator(GRADE_MIN), MaxValueValidator(GRADE_MAX)]

__all__ = ["GRADE_CHOICES", "GRADE_LABELS", "GRADE_MAX", "GRADE_MIN", "grade_validators"]
