"""``instance_insert``: INSERT a new model instance with SQL written once per model and database.

``Model.save()`` composes and compiles an ``InsertQuery`` on every call; for the vote, written on
every annotator action, that was about a quarter of ``vote_submit``'s CPU (py-spy under
``bench/annotate_load.py``). The statement here comes from the model's ``_meta`` once; each call
only prepares the values (each field's ``pre_save`` and ``get_db_prep_save``, as ``save()`` does)
and executes it.
"""
from __future__ import annotations

from functools import cache

from django.db import connection
from django.db.models import Model


@cache
def _insert_plan(model: type[Model], vendor: str) -> tuple[str, tuple, bool]:
    q = connection.ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(q(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    returning = connection.features.can_return_columns_from_insert
    sql = f"INSERT INTO {q(model._meta.db_table)} ({columns}) VALUES ({marks})"
    if returning:
        sql += f" RETURNING {q(model._meta.pk.column)}"
    return sql, fields, returning


def instance_insert(instance: Model) -> Model:
    """Write ``instance`` (not yet saved; its model has an automatic primary key) as a new row and
    return it with ``pk`` set and marked as loaded, as ``Model.save()`` would.

    Runs each field's ``pre_save`` (``auto_now_add`` fields take the current time) and
    ``get_db_prep_save``. Sends no ``pre_save``/``post_save`` signals: use it only for models
    nothing listens to. Database errors (constraints) propagate as from ``save()``.
    """
    model = type(instance)
    sql, fields, returning = _insert_plan(model, connection.vendor)
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pk = cursor.fetchone()[0] if returning else connection.ops.last_insert_id(
            cursor, model._meta.db_table, model._meta.pk.column)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
