"""Serializer fields that take a JSON value only as the type the schema names: DRF's own would turn
``"2"`` or ``2.0`` into the integer 2 and ``7`` into the string "7", so a client's type mistake
would pass unnoticed."""
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class StrictText(serializers.CharField):
    """A JSON string, not something DRF would turn into one (a number, a bool)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictInteger(serializers.IntegerField):
    """A JSON integer: not a string of digits, not a float (2.0), not a bool."""

    default_error_messages = {"invalid": _("A JSON integer is required (not a string, a float or a bool).")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
