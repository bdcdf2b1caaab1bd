"""The annotator page's read of one item: a comparison with its prompt, both completions, its
campaign and the campaign's latest guidelines, in one SQL statement built once per process.

The ORM version of this read (``select_related`` over four relations plus the guidelines columns
through ``.extra``) spent about 1.1 ms of CPU composing and compiling the statement for 0.1 ms
of database work, on every claim (``bench/annotate_load.py``). The statement here is written from
the models' ``_meta`` once, and each row is turned into model instances with the same database
converters the ORM applies (the backend's and the field's, as ``SQLCompiler.get_converters``), so callers get ordinary, fully loaded
instances with their relations cached (``feedback.sql_rows``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import Model

from .models import Campaign, Comparison, Completion, GuidelineAcknowledgement, GuidelineVersion, Prompt
from .sql_rows import ModelColumns, model_columns

# (alias, model, the comparison's foreign key column joined to it; None for the comparison itself)
_TABLES: tuple[tuple[str, type[Model], str | None], ...] = (
    ("c", Comparison, None),
    ("p", Prompt, "prompt_id"),
    ("ca", Completion, "completion_a_id"),
    ("cb", Completion, "completion_b_id"),
    ("k", Campaign, "campaign_id"),
)
_RELATIONS = ("prompt", "completion_a", "completion_b", "campaign")


@dataclass(frozen=True)
class ItemRow:
    """One loaded item: the comparison (its prompt, completions and campaign cached on it) and the
    campaign's latest guidelines version (``guidelines_id`` None: none written), with whether the
    annotator acknowledged that version."""

    comparison: Comparison
    guidelines_id: int | None
    guidelines_number: int | None
    guidelines_text: str | None
    guidelines_read: bool


@dataclass(frozen=True)
class _Plan:
    sql: str
    tables: tuple[ModelColumns, ...]


def _plan_build() -> _Plan:
    q = connection.ops.quote_name
    tables = tuple(model_columns(model, alias) for alias, model, _ in _TABLES)
    select = [t.select for t in tables]
    versions, acks = q(GuidelineVersion._meta.db_table), q(GuidelineAcknowledgement._meta.db_table)
    latest = f"(SELECT g.{{}} FROM {versions} g WHERE g.campaign_id = c.campaign_id ORDER BY g.number DESC LIMIT 1)"
    select += [latest.format("id"), latest.format("number"), latest.format("text"),
               f"EXISTS (SELECT 1 FROM {acks} a WHERE a.annotator_id = %s AND a.version_id = {latest.format('id')})"]
    joins = " ".join(
        f"INNER JOIN {q(model._meta.db_table)} {alias} ON {alias}.{q(model._meta.pk.column)} = c.{q(fk)}"
        for alias, model, fk in _TABLES if fk is not None
    )
    sql = f"SELECT {', '.join(select)} FROM {q(Comparison._meta.db_table)} c {joins} WHERE c.{q(Comparison._meta.pk.column)} = %s"
    return _Plan(sql, tables)


@cache
def _plan(vendor: str) -> _Plan:
    return _plan_build()


def item_row(*, comparison_id: int, annotator_id: int) -> ItemRow:
    """Load comparison ``comparison_id`` for annotator ``annotator_id`` (see ``ItemRow``).

    Raises ``Comparison.DoesNotExist`` when no such comparison exists. One query.
    """
    plan = _plan(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, [annotator_id, comparison_id])
        row = cursor.fetchone()
    if row is None:
        raise Comparison.DoesNotExist(f"Comparison {comparison_id} does not exist.")
    instances, at = [], 0
    for table in plan.tables:
        instances.append(table.load(row[at:at + table.width]))
        at += table.width
    comparison = instances[0]
    for name, related in zip(_RELATIONS, instances[1:]):
        Comparison._meta.get_field(name).set_cached_value(comparison, related)
    g_id, g_number, g_text, g_read = row[at:]
    return ItemRow(comparison, g_id, g_number, g_text, bool(g_read))
