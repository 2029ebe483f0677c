"""The ``<id:...>`` path converter: a database id in a URL.

Django's ``<int:...>`` takes any run of digits, and a number wider than the id column reaches the
database: SQLite raises OverflowError (a 500; the API fuzzer found it), PostgreSQL an out-of-range
error. An id is at most 18 digits, so every match fits a 64-bit column and anything longer is no
route at all (404). The OpenAPI schema says the same (settings.SPECTACULAR_SETTINGS).

Each urls module that routes ids imports this module; importing it registers the converter once.
"""
from django.urls import register_converter

ID_DIGITS = 18  # every 18-digit number is below 2**63


class IdConverter:
    regex = f"[0-9]{{1,{ID_DIGITS}}}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


register_converter(IdConverter, "id")
