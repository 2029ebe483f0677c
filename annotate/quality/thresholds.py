"""The quality flags' thresholds as this deployment sets them (the QUALITY_THRESHOLDS setting)."""
from __future__ import annotations

from dataclasses import fields

from django.conf import settings

from ..agreement.annotators import QualityThresholds as DefaultThresholds


class QualityThresholds(DefaultThresholds):
    """annotate/agreement/annotators.py's thresholds, with overrides read from the settings."""

    @classmethod
    def from_settings(cls) -> QualityThresholds:
        overrides = dict(getattr(settings, "QUALITY_THRESHOLDS", {}) or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"QUALITY_THRESHOLDS: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
        if "gold_credit" in overrides:
            overrides["gold_credit"] = tuple(overrides["gold_credit"])
        return cls(**overrides)
