"""Model instances from hand-written SQL, loaded as the ORM loads them.

For the few reads on every request (the annotator's item, the API token's user), composing and
compiling ORM queries cost several times the database work. ``ModelColumns`` lists a model's
columns for a SELECT once, and turns that slice of a row back into a fully loaded instance with the
converters the ORM applies (the backend's, then the field's, as ``SQLCompiler.get_converters``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model


@dataclass(frozen=True)
class ModelColumns:
    """``model``'s concrete columns under table alias ``alias``: ``select`` (SQL list, in field
    order), ``width`` (how many), and ``load(values)`` for that slice of a row."""

    model: type[Model]
    alias: str
    select: str
    names: tuple[str, ...]
    converters: tuple[tuple[Any, tuple], ...]

    @property
    def width(self) -> int:
        return len(self.names)

    def load(self, values: Sequence[Any]) -> Model:
        """A loaded instance (``_state.adding`` False) from ``values``, this model's columns in order."""
        converted = list(values)
        for i, (col, functions) in enumerate(self.converters):
            for function in functions:
                converted[i] = function(converted[i], col, connection)
        return self.model.from_db(connection.alias, self.names, converted)


def model_columns(model: type[Model], alias: str) -> ModelColumns:
    """``ModelColumns`` of ``model`` as ``alias`` on the current connection (cache the result per vendor)."""
    q = connection.ops.quote_name
    fields = model._meta.concrete_fields
    cols = [f.get_col(alias) for f in fields]
    return ModelColumns(
        model, alias, ", ".join(f"{alias}.{q(f.column)}" for f in fields), tuple(f.attname for f in fields),
        tuple((col, tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))) for col in cols),
    )
