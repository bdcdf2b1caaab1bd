"""manage.py campaign create|edit|add-comparisons|guidelines|activate|pause|close|show

A campaign is named by its slug or id. Lists are comma-separated. Bad input exits non-zero with
one line saying what is wrong (``CommandError``), nothing changed.

    manage.py campaign create "Safety sweep" --votes-required 3 --groups annotators --target-votes 600
    manage.py campaign add-comparisons safety-sweep --tags safety --splits eval
    manage.py campaign guidelines safety-sweep guidelines.md
    manage.py campaign activate safety-sweep
    manage.py campaign show safety-sweep
    manage.py campaign edit safety-sweep --gold-rate 0.1 --gold-feedback --gold-min-accuracy 0.7 --gold-min-votes 10
    manage.py campaign edit safety-sweep --fast-vote-ms 800
    manage.py campaign lift-pause safety-sweep alice
    manage.py campaign gold-from-imports safety-sweep hh-rlhf
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from feedback.campaigns import selectors, services
from feedback.campaigns.models import Campaign, aspect_label_default
from feedback.campaigns.progress import campaign_progress, campaigns_progress


UNSET = object()
SETTINGS = ("name", "slug", "description", "priority", "votes_required", "target_votes", "deadline", "rationale",
            "aspects", "ask_strength", "ask_demonstration", "show_quality_to_annotators", "annotators", "groups",
            "gold_rate", "gold_feedback", "gold_min_accuracy", "gold_min_votes", "fast_vote_ms",
            "ai_votes_count")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _int_or_none(text: str) -> int | None:
    if text.lower() in ("", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (or none)") from None


def _float_or_none(text: str) -> float | None:
    if text.lower() in ("", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or none)") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _deadline(text: str):
    if text.lower() in ("", "none"):
        return None
    moment = parse_datetime(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time such as 2027-01-31T18:00")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _aspects(text: str) -> list[dict[str, str]]:
    """``helpfulness:Which helps more?,honesty`` -> ``[{"name", "label"}, ...]``."""
    aspects = []
    for item in _names(text):
        name, _, label = item.partition(":")
        aspects.append({"name": name.strip(), "label": label.strip() or aspect_label_default(name.strip())})
    return aspects


def _one_line(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return "; ".join(error.messages)


class Command(BaseCommand):
    help = "Create, edit, fill, guide, activate, pause, close and show annotation campaigns."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True)
        create = commands.add_parser("create", help="create a draft campaign")
        create.add_argument("name")
        self._settings_arguments(create)
        edit = commands.add_parser("edit", help="change the settings given")
        edit.add_argument("campaign", help="slug or id")
        edit.add_argument("--name")
        self._settings_arguments(edit)
        add = commands.add_parser("add-comparisons", help="move comparisons in by rules (all given apply)")
        add.add_argument("campaign", help="slug or id")
        for rule in ("sources", "tags", "splits", "model-names", "ids"):
            add.add_argument(f"--{rule}", default="", help="comma-separated")
        guidelines = commands.add_parser("guidelines", help="add a guidelines version from a Markdown file ('-': stdin)")
        guidelines.add_argument("campaign", help="slug or id")
        guidelines.add_argument("file")
        for name, text in (("activate", "serve it to its pool"), ("pause", "stop serving it"),
                           ("close", "close it for good, releasing live leases"),
                           ("show", "progress (every campaign when none is named)")):
            sub = commands.add_parser(name, help=text)
            sub.add_argument("campaign", nargs="?" if name == "show" else None, help="slug or id")
        lift = commands.add_parser("lift-pause", help="give an annotator paused for gold accuracy their access back")
        lift.add_argument("campaign", help="slug or id")
        lift.add_argument("username")
        gold = commands.add_parser("gold-from-imports", help="make comparisons with an imported preference gold items")
        gold.add_argument("campaign", help="slug or id")
        gold.add_argument("source", help="the import's source (e.g. hh-rlhf)")

    @staticmethod
    def _settings_arguments(parser) -> None:
        # Options not given stay UNSET (unchanged); "none" clears target votes and the deadline.
        parser.set_defaults(**{key: UNSET for key in SETTINGS})
        parser.add_argument("--slug")
        parser.add_argument("--description")
        parser.add_argument("--priority", type=int)
        parser.add_argument("--votes-required", type=int)
        parser.add_argument("--target-votes", type=_int_or_none, help="a number, or none")
        parser.add_argument("--deadline", type=_deadline, help="e.g. 2027-01-31T18:00 (local time), or none")
        parser.add_argument("--rationale", help="off, optional or required")
        parser.add_argument("--aspects", type=_aspects, help="name[:label],... of helpfulness, harmlessness, honesty")
        parser.add_argument("--strength", action=argparse.BooleanOptionalAction, dest="ask_strength", default=UNSET)
        parser.add_argument("--demonstration", action=argparse.BooleanOptionalAction, dest="ask_demonstration", default=UNSET)
        parser.add_argument("--show-quality", action=argparse.BooleanOptionalAction, dest="show_quality_to_annotators",
                            default=UNSET, help="annotators see their agreement with the consensus")
        parser.add_argument("--annotators", type=_names, help="usernames")
        parser.add_argument("--groups", type=_names, help="group names")
        parser.add_argument("--gold-rate", type=_float, help="share of served items that are gold items, 0-1")
        parser.add_argument("--gold-feedback", action=argparse.BooleanOptionalAction, dest="gold_feedback", default=UNSET,
                            help="tell annotators after a gold vote whether they matched")
        parser.add_argument("--gold-min-accuracy", type=_float_or_none, help="0-1, below it an annotator is paused; none: never")
        parser.add_argument("--gold-min-votes", type=int, help="gold votes before the minimum accuracy applies")
        parser.add_argument("--ai-votes-count", action=argparse.BooleanOptionalAction, dest="ai_votes_count",
                            default=UNSET, help="AI judges' votes count toward votes per comparison")
        parser.add_argument("--fast-vote-ms", type=int, help="votes faster than this many ms on the item are flagged, 0-600000")

    def handle(self, *args, subcommand: str, **options):
        try:
            getattr(self, "_" + subcommand.replace("-", "_"))(options)
        except ValidationError as error:
            raise CommandError(_one_line(error)) from None

    # --- subcommands ------------------------------------------------------------------------------
    @staticmethod
    def _campaign(ref: str) -> Campaign:
        found = Campaign.objects.filter(slug=ref).first() or (Campaign.objects.filter(pk=int(ref)).first() if ref.isdigit() else None)
        if found is None:
            raise CommandError(f"no campaign {ref!r} (give its slug or id)")
        return found

    @staticmethod
    def _values(options: dict[str, Any]) -> dict[str, Any]:
        return {key: options[key] for key in SETTINGS if options.get(key, UNSET) is not UNSET}

    def _create(self, options) -> None:
        campaign = services.campaign_create(values=self._values(options))
        self.stdout.write(f"created draft campaign {campaign.slug} (id {campaign.pk})")

    def _edit(self, options) -> None:
        campaign = services.campaign_update(campaign=self._campaign(options["campaign"]), values=self._values(options))
        self.stdout.write(f"saved campaign {campaign.slug}")

    def _add_comparisons(self, options) -> None:
        rules: dict[str, list] = {}
        for key in ("sources", "tags", "splits", "model_names"):
            if _names(options[key]):
                rules[key] = _names(options[key])
        if _names(options["ids"]):
            bad = [text for text in _names(options["ids"]) if not text.isdigit()]
            if bad:
                raise CommandError(f"ids: not comparison ids: {', '.join(bad)}")
            rules["ids"] = [int(text) for text in _names(options["ids"])]
        campaign = self._campaign(options["campaign"])
        moved = services.campaign_comparisons_add(campaign=campaign, rules=rules)
        self.stdout.write(f"moved {moved} comparison{'s' * (moved != 1)} into {campaign.slug}")

    def _guidelines(self, options) -> None:
        campaign = self._campaign(options["campaign"])
        try:
            text = sys.stdin.read() if options["file"] == "-" else open(options["file"], encoding="utf-8").read()
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {options['file']}: {error}") from None
        version = services.guidelines_edit(campaign=campaign, text=text)
        self.stdout.write(f"{campaign.slug} guidelines: version {version.number} is current")

    def _activate(self, options) -> None:
        campaign = services.campaign_activate(campaign=self._campaign(options["campaign"]))
        self.stdout.write(f"{campaign.slug} is active")

    def _pause(self, options) -> None:
        campaign = services.campaign_pause(campaign=self._campaign(options["campaign"]))
        self.stdout.write(f"{campaign.slug} is paused")

    def _close(self, options) -> None:
        campaign = self._campaign(options["campaign"])
        released = services.campaign_close(campaign=campaign)
        self.stdout.write(f"{campaign.slug} is closed; {released} live lease{'s' * (released != 1)} released")

    def _lift_pause(self, options) -> None:
        from feedback.quality.gold_services import pause_lift

        campaign = self._campaign(options["campaign"])
        lifted = pause_lift(campaign=campaign, username=options["username"])
        self.stdout.write(f"{options['username']} may annotate in {campaign.slug} again" if lifted
                          else f"{options['username']} was not paused in {campaign.slug}")

    def _gold_from_imports(self, options) -> None:
        from feedback.quality.gold_services import gold_from_imported_votes

        campaign = self._campaign(options["campaign"])
        made = gold_from_imported_votes(campaign=campaign, source=options["source"])
        self.stdout.write(f"{made} comparison{'s' * (made != 1)} of {campaign.slug} are gold items now")

    def _show(self, options) -> None:
        if not options.get("campaign"):
            campaigns = list(selectors.campaign_list())
            progress = campaigns_progress(campaigns=campaigns)
            for campaign in campaigns:
                p = progress[campaign.pk]
                ai = f" (+{p.ai_votes} AI{'' if p.ai_votes_count else ', not counted'})" if p.ai_votes else ""
                self.stdout.write(f"{campaign.slug:<30} {campaign.status:<7} {p.counted}/{p.target} votes{ai}  "
                                  f"{p.comparisons} comparisons ({p.open} open)")
            return
        campaign = self._campaign(options["campaign"])
        p = campaign_progress(campaign=campaign)
        rate = f"{p.rate_recent:.1f}/h over 24 h, {p.rate_overall:.1f}/h overall" if p.rate_recent is not None else "no votes yet"
        eta = "reached" if p.remaining == 0 else "no recent votes" if p.eta is None else f"{p.eta.total_seconds() / 3600:.1f} h"
        lines = [
            f"{campaign.name} ({campaign.slug}): {campaign.status}",
            f"votes: {p.counted}/{p.target} ({p.percent}%, target from {p.target_kind})",
            f"by origin: {p.votes} human, {p.ai_votes} AI ({'counted' if p.ai_votes_count else 'not counted'})",
            f"comparisons: {p.comparisons} ({p.open} open, {p.complete} complete, {p.retired} retired)",
            f"rate: {rate}",
            f"time to target: {eta}",
        ]
        if p.deadline:
            lines.append(f"deadline: {p.deadline:%Y-%m-%d %H:%M} ({'on track' if p.on_track else 'behind'})")
        lines += [f"  {row.username}: {row.votes}" for row in p.annotators]
        self.stdout.write("\n".join(lines))
