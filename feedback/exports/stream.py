"""Comparisons with their votes, streamed from the database in constant memory.

``comparison_groups`` walks comparisons in id order by keyset pagination (``id > last``, ``LIMIT
chunk_size``), never by OFFSET. Per chunk it runs two queries, built by the ORM and run on a plain
cursor (no model instances, no per-value converters: a million votes' worth of Django's row
conversion cost more than everything else together): the chunk's comparisons with their prompt
and completions, then either the chunk's votes ordered by ``(comparison_id, id)`` (formats that
show single votes) or only their tally per comparison, counted by the database (see
``_tally_query``). Memory is one chunk of comparisons and votes (plus the set of eval prompt keys),
whatever the number of votes.

Votes are those with ``id <= max_vote_id`` (the last vote when the export started, so votes cast
meanwhile do not half-appear) that pass the vote filters (dates, annotators); comparisons are those
with at least one such vote that pass the comparison filters (models, tags, gold); a comparison whose
prompt is not in the asked splits is dropped after reading (its split is decided as snapshots
decide it: eval when any prompt with the same messages that has a vote is stored as eval).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import groupby
from operator import itemgetter

from django.db import connection
from django.db.models import BigIntegerField, Case, Count, Exists, Max, OuterRef, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast

from feedback.models import Comparison, Prompt, Vote
from feedback.selectors import prompts_with_tag

from .filters import ExportFilters
from .formats import TALLY_KEYS, VOTE_ROW_DEFAULTS, ComparisonGroup, Tally, VoteRow, tally_of

CHUNK_COMPARISONS = 5000
_first = itemgetter(0)
# The tally query packs a comparison's counts into one integer, TALLY_BITS bits per TALLY_KEYS
# entry (10 x 6 = 60 bits: fits a signed 64-bit integer). A field cannot overflow while the
# comparison has fewer than 2**TALLY_BITS votes; those with more are counted exactly instead.
TALLY_BITS = 6
TALLY_PACKED_MAX_VOTES = (1 << TALLY_BITS) - 1

_COMPARISON_COLUMNS = (
    "id", "prompt_id", "prompt__messages", "prompt__messages_sha256",
    "completion_a_id", "completion_b_id", "completion_a__model_name", "completion_b__model_name",
    "completion_a__text", "completion_b__text", "gold_choice", "import_flags",
)
_VOTE_COLUMNS = ("comparison_id", "id", "choice", "strength", "annotator_id")
_VOTE_DETAIL_COLUMNS = (
    "annotator__username", "rationale", "helpfulness", "harmlessness", "honesty",
    "shown_left", "ms_on_item", "source", "created_at", "origin",
)


def vote_last_id() -> int:
    """The id of the newest vote (0 when there is none): the stream's upper bound."""
    return Vote.objects.aggregate(last=Max("id"))["last"] or 0


def _vote_q(filters: ExportFilters, *, max_vote_id: int | None, prefix: str = "") -> Q:
    """The vote filters as a Q on Vote (``prefix`` ``"votes__"`` etc. to use them from another model)."""
    q = Q()
    if filters.votes in ("human", "ai"):  # whose votes (feedback.vote_origins); "both": every vote
        q &= Q(**{f"{prefix}origin": filters.votes})
    if max_vote_id is not None:
        q &= Q(**{f"{prefix}id__lte": max_vote_id})
    if filters.date_from is not None:
        q &= Q(**{f"{prefix}created_at__gte": filters.date_from})
    if filters.date_to is not None:
        q &= Q(**{f"{prefix}created_at__lt": filters.date_to})
    if filters.annotators:
        q &= Q(**{f"{prefix}annotator_id__in": filters.annotators})
    if filters.exclude_annotators:
        q &= ~Q(**{f"{prefix}annotator_id__in": filters.exclude_annotators})
    if filters.min_ms_on_item:  # a vote without a time is kept
        q &= ~Q(**{f"{prefix}ms_on_item__lt": filters.min_ms_on_item})
    return q


def _comparison_q(filters: ExportFilters, *, prefix: str = "") -> Q:
    """The comparison filters (models, tags, gold) as a Q on Comparison (``prefix`` ``"comparison__"`` from Vote)."""
    q = Q()
    if filters.model_names:
        q &= Q(**{f"{prefix}completion_a__model_name__in": filters.model_names}) | Q(
            **{f"{prefix}completion_b__model_name__in": filters.model_names}
        )
    if filters.tags:
        tagged = Q()
        for tag in filters.tags:
            tagged |= Q(**{f"{prefix}prompt__in": prompts_with_tag(tag).values("pk")})
        q &= tagged
    if filters.gold == "exclude":
        q &= Q(**{f"{prefix}gold_choice": ""})
    elif filters.gold == "only":
        q &= ~Q(**{f"{prefix}gold_choice": ""})
    return q


def votes_matching(*, filters: ExportFilters, max_vote_id: int | None = None) -> QuerySet[Vote]:
    """Votes passing the vote and comparison filters (not splits or agreement, which need the
    whole comparison): what an export will read, for sizing and progress."""
    return Vote.objects.filter(_vote_q(filters, max_vote_id=max_vote_id) & _comparison_q(filters, prefix="comparison__"))


def eval_prompt_keys() -> set[str]:
    """``messages_sha256`` of every prompt stored as eval that has a vote: the ``eval_keys`` of
    ``feedback.preferences.build_preference_dataset``, so exports split prompts as snapshots do."""
    voted = Vote.objects.filter(comparison__prompt_id=OuterRef("pk"))
    # No DISTINCT: with it SQLite walks every prompt in hash order instead of the split index.
    keys = Prompt.objects.filter(split="eval").filter(Exists(voted)).values_list("messages_sha256")
    return {key for (key,) in _fetch(keys)}


def comparison_groups(
    *,
    filters: ExportFilters,
    vote_details: bool = False,
    max_vote_id: int | None = None,
    chunk_size: int = CHUNK_COMPARISONS,
    on_chunk: Callable[[int], None] | None = None,
    id_range: tuple[int, int] | None = None,
    eval_keys: set[str] | None = None,
) -> Iterator[ComparisonGroup]:
    """Every comparison with at least one vote passing ``filters``, with those votes, in comparison id order.

    Args:
        filters: see ``feedback.exports.filters``; ``min_agreement`` is not applied here
            (``feedback.exports.formats.export_rows`` applies it).
        vote_details: read the votes themselves, every field (``VoteRow``'s optional ones
            included); otherwise only their tally is read (``ComparisonGroup.tally``, counted
            by the database) and ``votes`` is empty.
        max_vote_id: ignore votes with a larger id (None: no bound).
        chunk_size: comparisons per chunk (two queries per chunk).
        on_chunk: called with the number of votes read after each chunk's groups are consumed.
        id_range: ``(first, last)``: only comparisons with ``first <= id <= last`` (None: all).
        eval_keys: ``eval_prompt_keys()`` when the caller has it already (None: read here).
    Yields:
        ``ComparisonGroup`` records; ``votes`` (with ``vote_details``) in vote id order.
    """
    vote_q = _vote_q(filters, max_vote_id=max_vote_id)
    comparisons = Comparison.objects.filter(_comparison_q(filters)).order_by("id")
    if id_range is not None:
        comparisons = comparisons.filter(id__gte=id_range[0], id__lte=id_range[1])
    if filters.date_from or filters.date_to or filters.annotators or filters.exclude_annotators or filters.min_ms_on_item:
        # Skip comparisons none of whose votes pass (an incremental export reads only new ones).
        # Without vote filters this costs more than reading the few comparisons that have no votes.
        comparisons = comparisons.filter(Exists(Vote.objects.filter(vote_q, comparison_id=OuterRef("pk"))))
    vote_columns = _VOTE_COLUMNS + (_VOTE_DETAIL_COLUMNS if vote_details else ())
    wanted_splits = set(filters.splits)
    eval_keys = eval_prompt_keys() if eval_keys is None else eval_keys
    # Votes of a chunk are read by comparison id range when no comparison filter can drop
    # comparisons inside the range (far cheaper than a 5,000-id IN list); otherwise by the ids,
    # so a sparse filter never pulls a huge range into memory.
    by_range = not (filters.model_names or filters.tags or filters.gold != "include")
    # The per-chunk queries differ only in their id bounds: compiled once, run with new bounds.
    page = _Compiled(comparisons.filter(id__gt=_AFTER).values_list(*_COMPARISON_COLUMNS)[:chunk_size], after=_AFTER)
    range_tally = None
    # AI votes weighing other than 1 (votes "both" with an ai_weight): the tally is summed per vote here.
    weight = (lambda origin: filters.ai_weight if origin == "ai" else 1.0) if filters.weighted else None
    if by_range and not vote_details and weight is None:
        range_votes = Vote.objects.filter(vote_q, comparison_id__gte=_FIRST, comparison_id__lte=_LAST)
        range_tally = _Compiled(_tally_query(range_votes), first=_FIRST, last=_LAST)
    with _serial_plans():
        yield from _chunks(page, range_tally, by_range, vote_q, vote_details, vote_columns, eval_keys, wanted_splits,
                           on_chunk, weight)


@contextmanager
def _serial_plans() -> Iterator[None]:
    """On PostgreSQL, plan the export's queries without parallel workers while it runs. A page of
    comparisons is a LIMIT query whose open-ended ``id > last`` the planner overestimates, so it
    starts two parallel workers for each page: extra processes competing for the CPU with the
    export (and its own workers) for no gain. Elsewhere, nothing to do."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    try:
        yield
    finally:
        if connection.connection is not None and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("RESET max_parallel_workers_per_gather")


def _chunks(page, range_tally, by_range, vote_q, vote_details, vote_columns, eval_keys, wanted_splits, on_chunk,
            weight=None):
    """``comparison_groups``' loop over its chunks (see there)."""
    padding = VOTE_ROW_DEFAULTS[len(vote_columns) - 1:]
    new_vote = tuple.__new__  # VoteRow(*row) without its Python-level __new__: 1M calls add up
    last = 0
    while True:
        chunk = page.rows(after=last)
        if not chunk:
            return
        last = chunk[-1][0]
        if by_range:
            votes = Vote.objects.filter(vote_q, comparison_id__gte=chunk[0][0], comparison_id__lte=last)
        else:
            votes = Vote.objects.filter(vote_q, comparison_id__in=[c[0] for c in chunk])
        votes_by_comparison: dict[int, list[VoteRow]] = {}
        tallies: dict[int, Tally] = {}
        read = 0
        if vote_details:
            for comparison_id, rows in groupby(votes.order_by("comparison_id", "id").values_list(*vote_columns), key=_first):
                group = votes_by_comparison[comparison_id] = [new_vote(VoteRow, row[1:] + padding) for row in rows]
                tallies[comparison_id] = tally_of(
                    [(v.choice, v.strength) for v in group], None if weight is None else [weight(v.origin) for v in group])
                read += len(group)
        elif weight is not None:
            rows = _fetch(votes.order_by("comparison_id", "id").values_list("comparison_id", "choice", "strength", "origin"))
            for comparison_id, group in groupby(rows, key=_first):
                group = list(group)
                tallies[comparison_id] = tally_of([(c, s) for _, c, s, _ in group], [weight(o) for *_, o in group])
                read += len(group)
        else:
            counted = range_tally.rows(first=chunk[0][0], last=last) if range_tally else _fetch(_tally_query(votes))
            read = _tallies_read(counted, votes, tallies)
        for (pk, prompt_id, messages, prompt_key, a_id, b_id, model_a, model_b, text_a, text_b, gold, flags) in chunk:
            tally = tallies.get(pk)
            if not tally:
                continue
            split = "eval" if prompt_key in eval_keys else "train"
            if split in wanted_splits:
                # The prompt is parsed only if a format reads ``prompt_messages`` (see ComparisonGroup).
                stored = isinstance(messages, str)
                yield ComparisonGroup(pk, prompt_id, None if stored else messages, split, a_id, b_id, model_a, model_b,
                                      text_a, text_b, gold, votes_by_comparison.get(pk, []), tally,
                                      messages if stored else "", flags)
        if on_chunk is not None:
            on_chunk(read)


# Sentinel id bounds for ``_Compiled`` (no real id is negative).
_AFTER, _FIRST, _LAST = -7_319_884_412_901, -7_319_884_412_902, -7_319_884_412_903


class _Compiled:
    """A ``values_list`` queryset's SQL, compiled once, run again with other values in place of
    the sentinel parameters it was built with (compiling the tally query cost ~3 ms a chunk)."""

    def __init__(self, queryset: QuerySet, **sentinels: int):
        self.sql, params = queryset.query.sql_with_params()
        self.params = list(params)
        self.slots = {}
        for name, value in sentinels.items():
            slots = [k for k, param in enumerate(self.params) if type(param) is int and param == value]
            if not slots:
                raise ValueError(f"the query has no {name} parameter")
            self.slots[name] = slots

    def rows(self, **values: int) -> list[tuple]:
        params = list(self.params)
        for name, value in values.items():
            for k in self.slots[name]:
                params[k] = value
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            return cursor.fetchall()


def _fetch(queryset: QuerySet) -> list[tuple]:
    """The rows of a ``values_list`` queryset as the database driver gives them (no converters).

    Only for columns whose raw values are what the caller wants: integers and text as they are,
    JSON as its text (SQLite stores text; the PostgreSQL backend loads ``jsonb`` as text)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _tally_query(votes: QuerySet[Vote]) -> QuerySet:
    """Per comparison of ``votes``: ``(comparison_id, packed tally, number of votes)``, in id order.

    The packed tally is SUM over the votes of ``2 ** (TALLY_BITS * k)`` where ``k`` is the vote's
    ``(choice, strength)`` index in ``TALLY_KEYS``: one integer per comparison instead of a row per
    vote (on SQLite, 1,000,000 votes tally in about 0.8 s this way, against 1.2 s just to read them
    and 2.5 s with one COUNT per key)."""
    position = {key: k for k, key in enumerate(TALLY_KEYS)}

    def weight(choice: str, strength: str) -> Value:
        return Value(1 << (TALLY_BITS * position[choice, strength]))

    def by_strength(choice: str) -> Case:
        return Case(*(When(strength=s, then=weight(choice, s)) for c, s in TALLY_KEYS if c == choice),
                    default=Value(0), output_field=BigIntegerField())

    # Nested on choice first: ~15% cheaper than one WHEN per (choice, strength).
    choices = dict.fromkeys(c for c, _ in TALLY_KEYS)
    packed = Case(
        *(When(choice=c, then=by_strength(c) if c in ("a", "b") else weight(c, "")) for c in choices),
        default=Value(0), output_field=BigIntegerField(),
    )
    return (
        votes.order_by().values("comparison_id")
        .annotate(packed=Cast(Sum(packed), BigIntegerField()), n=Count("*"))
        .order_by("comparison_id").values_list("comparison_id", "packed", "n")
    )


@lru_cache(maxsize=65_536)
def _unpack(packed: int) -> Tally:
    mask = (1 << TALLY_BITS) - 1
    return tuple(
        (key, count) for k, key in enumerate(TALLY_KEYS) if (count := (packed >> (TALLY_BITS * k)) & mask)
    )


def _tallies_read(counted: list[tuple], votes: QuerySet[Vote], tallies: dict[int, Tally]) -> int:
    """Fill ``tallies`` (comparison id -> tally) from ``counted``, the rows of ``_tally_query(votes)``;
    returns the number of votes. Comparisons with too many votes to pack are counted exactly, by key."""
    read = 0
    crowded = []
    for comparison_id, packed, count in counted:
        read += count
        if count > TALLY_PACKED_MAX_VOTES:
            crowded.append(comparison_id)
            continue
        tallies[comparison_id] = _unpack(int(packed))
    if crowded:
        rows = _fetch(votes.filter(comparison_id__in=crowded).order_by("comparison_id")
                      .values_list("comparison_id", "choice", "strength"))
        for comparison_id, group in groupby(rows, key=_first):
            tallies[comparison_id] = tally_of([(choice, strength) for _, choice, strength in group])
    return read
