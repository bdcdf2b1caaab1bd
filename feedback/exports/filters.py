"""Which votes and comparisons an export takes, and how a request's choices are checked (no Django imports).

Filters (JSON-shaped; every key optional, every given filter applies):

- ``date_from`` / ``date_to``: votes created at or after ``date_from`` and before ``date_to``.
  Either is an ISO 8601 date (``"2025-03-01"``: a whole UTC day, so ``date_to`` includes that day)
  or date-time (naive means UTC; ``date_to`` is then exclusive). Stored as UTC date-times,
  ``date_to`` as the exclusive end.
- ``annotators``: only these annotators' votes (user ids); ``exclude_annotators``: never these.
  (The services turn usernames into ids first.)
- ``model_names``: comparisons where either completion was written by one of these models.
- ``tags``: comparisons whose prompt carries at least one of these tags.
- ``splits``: ``["train"]``, ``["eval"]`` or both (the default), the prompt's split as snapshots
  decide it.
- ``min_agreement``: 0.0-1.0; comparisons whose filtered votes agree less (share giving the most
  common choice) are left out, in every format.
- ``gold``: ``"include"`` (default), ``"exclude"`` (leave gold items out) or ``"only"``.
- ``include_flagged``: false (default) leaves out comparisons imported with flags
  (``feedback.import_flags``), counted as ``flagged_import``; true exports them too.
- Quality rules, as in snapshot rules (``feedback.quality.rules``): ``min_gold_accuracy`` (0-1,
  judged from ``min_gold_votes`` gold votes on), ``min_kappa`` (0-1), ``exclude_flagged`` and
  ``min_ms_on_item`` (whole ms) leave out votes, counted in the export's counts by reason
  (``left_out_low_gold``, ``left_out_low_kappa``, ``left_out_flagged_annotator``,
  ``left_out_fast_votes``); judged on the votes the other vote filters pass.
- ``votes``: whose votes (``feedback.vote_origins``): ``"human"`` (default: people's only), ``"ai"``
  (AI judges' only) or ``"both"``, with ``ai_weight`` (0-1, default 1) the weight of each AI vote
  in a comparison's tally for the aggregating formats (majority, agreement share, margin). Formats
  of single votes (raw votes, arena) write each vote; an AI vote's annotator is its judge's name
  (``judge:<name>@<version>``), never a pseudonym.
- ``aggregation``: ``"majority"`` (default) or ``"dawid_skene"``: each comparison's winner is its
  Dawid-Skene label over the exported votes (``feedback.quality.aggregation``), ties and both-bad
  handled as majority's; ``dawid_skene_differs`` counts the comparisons whose label differs.

Options (``feedback.exports.formats.ExportOptions``) are checked against the format: a format
refuses an option it does not read. ``include_eval_set_prompts`` (false by default; every format
with texts takes it) keeps comparisons whose prompt is in an eval set, which are otherwise left out
and counted as ``eval_set_excluded`` (``feedback.exports.formats`` says which formats and why).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from feedback.preferences import RulesError, RulesReader
from feedback.vote_origins import DEFAULT_AI_WEIGHT, DEFAULT_VOTES, vote_choice_dict

from .formats import FILE_TYPES, FORMATS, ExportOptions, leaves_out_eval_set_prompts

SPLITS = ("train", "eval")
GOLD = ("include", "exclude", "only")
MAX_LIST = 1000
MAX_NAME_CHARS = 200


class ExportRequestError(ValueError):
    """An export request that does not validate; ``errors`` maps each bad field to its message
    (``format``, ``file_type``, ``filters``, ``options``, or a filter's own name)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def _moment(value: Any, *, end: bool) -> datetime | None:
    """An ISO date or date-time as an aware UTC datetime; a bare date as its start (``end``: the
    next day's start). None when the value does not parse."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _strings(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple)) and len(value) <= MAX_LIST
        and all(isinstance(s, str) and s.strip() and len(s) <= MAX_NAME_CHARS and "\x00" not in s for s in value)
    )


@dataclass(frozen=True)
class ExportFilters:
    """Checked filters (see the module docstring); ``from_dict`` validates, ``as_dict`` round-trips."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    annotators: tuple[int, ...] = ()
    exclude_annotators: tuple[int, ...] = ()
    model_names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    splits: tuple[str, ...] = SPLITS
    min_agreement: float = 0.0
    gold: str = "include"
    include_flagged: bool = False
    min_gold_accuracy: float | None = None
    min_gold_votes: int = 5
    min_kappa: float | None = None
    exclude_flagged: bool = False
    min_ms_on_item: int = 0
    aggregation: str = "majority"
    votes: str = DEFAULT_VOTES
    ai_weight: float = DEFAULT_AI_WEIGHT

    @property
    def weighted(self) -> bool:
        """Whether AI votes weigh other than 1 in a tally (``votes: "both"`` with ``ai_weight`` below 1)."""
        return self.votes == "both" and self.ai_weight != 1.0

    @property
    def uses_quality(self) -> bool:
        """Whether a quality rule that leaves out annotators is set (``min_ms_on_item`` is a plain vote filter)."""
        return self.min_gold_accuracy is not None or self.min_kappa is not None or self.exclude_flagged

    @classmethod
    def from_dict(cls, data: Any) -> "ExportFilters":
        """Validate JSON-shaped filters; missing keys take their defaults.

        Raises:
            RulesError: every problem at once, ``{filter name: message}``; unknown keys are errors.
        """
        reader = RulesReader(data, [f.name for f in fields(cls)], noun="filter")
        for name, end in (("date_from", False), ("date_to", True)):
            reader.check(
                name, lambda v, end=end: v is None or _moment(v, end=end) is not None,
                "must be an ISO 8601 date (YYYY-MM-DD) or date-time",
                lambda v, end=end: None if v is None else _moment(v, end=end),
            )
        reader.ids("annotators")
        reader.ids("exclude_annotators")
        for name in ("model_names", "tags"):
            reader.check(
                name, _strings, f"must be a list of at most {MAX_LIST} non-empty names",
                lambda v: tuple(sorted({s.strip() for s in v})),
            )
        reader.check(
            "splits", lambda v: isinstance(v, (list, tuple)) and v and all(s in SPLITS for s in v),
            "must be a non-empty list of train and/or eval",
            lambda v: tuple(s for s in SPLITS if s in v),
        )
        reader.fraction("min_agreement")
        reader.check("gold", lambda v: v in GOLD, f"must be one of {', '.join(GOLD)}")
        reader.flag("include_flagged")
        reader.quality_fields()
        reader.vote_choice()
        values = reader.result()
        if values.get("aggregation") == "dawid_skene" and values.get("ai_weight", 1.0) != 1.0:
            raise RulesError({"ai_weight": "must be 1 with aggregation dawid_skene (it weighs every voter itself)"})
        start, end = values.get("date_from"), values.get("date_to")
        if start is not None and end is not None and start >= end:
            raise RulesError({"date_to": "must be after date_from"})
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready filters (dates as ISO UTC date-times); ``from_dict(f.as_dict()) == f``."""
        return {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "annotators": list(self.annotators),
            "exclude_annotators": list(self.exclude_annotators),
            "model_names": list(self.model_names),
            "tags": list(self.tags),
            "splits": list(self.splits),
            "min_agreement": self.min_agreement,
            "gold": self.gold,
            "include_flagged": self.include_flagged,
            # Quality rules only when set, so filters stored before them read the same.
            **{name: getattr(self, name) for name, default in _QUALITY_DEFAULTS.items() if getattr(self, name) != default},
            **vote_choice_dict(self.votes, self.ai_weight),  # only when not people's votes only, likewise
        }


_QUALITY_DEFAULTS = {"min_gold_accuracy": None, "min_gold_votes": 5, "min_kappa": None, "exclude_flagged": False,
                     "min_ms_on_item": 0, "aggregation": "majority"}


def options_parse(options: Any, *, format_name: str) -> ExportOptions:
    """Check a format's options (``{"conversational": bool, ...}``); absent ones take their defaults.

    Raises:
        RulesError: ``{"options": message}``: not an object, an unknown option, one the format does
            not read, or a value that is not true/false.
    """
    if options is None:
        return ExportOptions()
    if not isinstance(options, dict):
        raise RulesError({"options": "must be an object of option names to true/false"})
    known = [f.name for f in fields(ExportOptions)]
    allowed = FORMATS[format_name].options
    problems = []
    for key, value in options.items():
        if key not in known:
            problems.append(f"unknown option {key!r}; expected one of {', '.join(known)}")
        elif key not in allowed:
            problems.append(f"{key!r} does not apply to {format_name}" + (
                f" (it takes {', '.join(allowed)})" if allowed else " (it takes no options)"))
        elif not isinstance(value, bool):
            problems.append(f"{key} must be true or false")
    if problems:
        raise RulesError({"options": "; ".join(problems)})
    return ExportOptions(**options)


@dataclass(frozen=True)
class ExportRequest:
    """A checked export: format and file type names, filters and options."""

    format: str
    file_type: str
    filters: ExportFilters
    options: ExportOptions
    # Dawid-Skene labels by comparison id, set by ``feedback.exports.quality.export_quality_apply``
    # before writing when ``filters.aggregation == "dawid_skene"`` (None: majority).
    labels: dict[int, str] | None = None

    @property
    def leaves_out_eval_set_prompts(self) -> bool:
        """Whether this export leaves out comparisons on eval-set prompts (``formats.leaves_out_eval_set_prompts``)."""
        return leaves_out_eval_set_prompts(self.format, self.options)

    def options_dict(self) -> dict[str, bool]:
        """The options the format reads, JSON-ready (what ``options_parse`` takes back)."""
        allowed = FORMATS[self.format].options
        return {key: value for key, value in self.options.as_dict().items() if key in allowed}


def export_request_parse(*, format: Any, file_type: Any, filters: Any = None, options: Any = None) -> ExportRequest:
    """Check everything an export needs before anything is written.

    Raises:
        ExportRequestError: every problem found: ``format`` (unknown name), ``file_type`` (unknown,
            or one the format cannot be written as, e.g. CSV for nested formats), ``filters`` /
            a filter's name, ``options``.
    """
    errors: dict[str, str] = {}
    if format not in FORMATS:
        errors["format"] = f"unknown format {format!r}; expected one of {', '.join(FORMATS)}"
    if file_type not in FILE_TYPES:
        errors["file_type"] = f"unknown file type {file_type!r}; expected one of {', '.join(FILE_TYPES)}"
    elif format in FORMATS and file_type not in FORMATS[format].file_types:
        errors["file_type"] = (
            f"{format} cannot be written as {file_type}; choose one of {', '.join(FORMATS[format].file_types)}"
        )
    parsed_filters = parsed_options = None
    try:
        parsed_filters = ExportFilters.from_dict({} if filters is None else filters)
    except RulesError as error:
        errors.update(error.errors)
    if format in FORMATS:
        try:
            parsed_options = options_parse(options, format_name=format)
        except RulesError as error:
            errors.update(error.errors)
    if errors:
        raise ExportRequestError(errors)
    return ExportRequest(format=format, file_type=file_type, filters=parsed_filters, options=parsed_options)
