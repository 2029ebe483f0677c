"""Plain multi-row INSERTs for the importer's hot path, without building a model instance per row.

`bulk_create` spends most of its time preparing values field by field and row by row (profiled on
kuake-qtr-train: ~70% of an import). Here the rows are given as tuples of ready values for the
columns the importer knows; every other column gets its model default (callable defaults such as
Query.shuffle_key once per row, auto_now fields the current time), so the rows are exactly what
bulk_create would have written.

PostgreSQL: one `INSERT ... SELECT FROM unnest(arrays) RETURNING id, key...` per batch (a handful
of parameters however many rows). SQLite: `executemany`; the caller looks the ids up afterwards.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection, models
from django.utils import timezone


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: list[tuple],
                returning: Sequence[str] = ()) -> list[tuple] | None:
    """Insert rows (values for `columns`, by attname) and return [(id, *returning)] on PostgreSQL,
    None where the backend cannot return them cheaply (the caller then selects the ids)."""
    if not rows:
        return [] if connection.vendor == "postgresql" else None
    fields = {f.attname: f for f in model._meta.concrete_fields}
    extra = [f for name, f in fields.items() if name not in columns and not f.primary_key
             and not (f.null and not f.has_default())]
    all_fields = [fields[name] for name in columns] + extra
    now = timezone.now()
    columns_values = [list(col) for col in zip(*rows)] + [_defaults(f, len(rows), now) for f in extra]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in all_fields)
    if connection.vendor == "postgresql":
        return _insert_postgresql(model, table, names, all_fields, columns_values, returning)
    prepared = [
        [json.dumps(v, ensure_ascii=False) for v in values] if isinstance(field, models.JSONField)
        else [field.get_db_prep_save(v, connection) for v in values] if isinstance(field, models.DateTimeField)
        else values
        for field, values in zip(all_fields, columns_values)
    ]
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(all_fields))})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(zip(*prepared)))
    return None


def _insert_postgresql(model, table: str, names: str, fields, columns_values, returning) -> list[tuple]:
    """Columns whose value is the same on every row go as one parameter, the others as arrays
    through unnest(); parameters are bound server-side, not quoted into the SQL text."""
    import psycopg

    selects, arrays, params = [], [], []
    for field, values in zip(fields, columns_values):
        is_json = isinstance(field, models.JSONField)
        db_type = "jsonb" if is_json else field.db_type(connection)
        if is_json:
            values = [json.dumps(v, ensure_ascii=False) for v in values]
        if _all_equal(values):
            selects.append(f"%s::{db_type}" if not is_json else "%s::text::jsonb")
            params.append(("scalar", values[0]))
        else:
            selects.append(f"u.c{len(arrays)}")
            arrays.append(("%s::text[]::jsonb[]" if is_json else f"%s::{db_type}[]", values))
    # Parameters appear in the SQL in this order: the select list's scalars, then the arrays.
    back = ", ".join(connection.ops.quote_name(model._meta.get_field(n).column) for n in ("id", *returning))
    aliases = ", ".join(f"c{i}" for i in range(len(arrays)))
    source = f" FROM unnest({', '.join(cast for cast, _ in arrays)}) AS u({aliases})" if arrays else ""
    sql = f"INSERT INTO {table} ({names}) SELECT {', '.join(selects)}{source} RETURNING {back}"
    values = [value for _, value in params] + [array for _, array in arrays]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall()


def _all_equal(values: list) -> bool:
    first = values[0]
    return all(v == first for v in values) and not isinstance(first, (dict, list))


def _defaults(field: models.Field, n: int, now) -> list:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return [now] * n
    if field.has_default() and callable(field.default):
        return [field.default() for _ in range(n)]
    return [field.get_default()] * n
