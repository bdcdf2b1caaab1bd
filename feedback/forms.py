"""HTML forms: shape only; the services hold the rules."""
from django import forms

from .models import AspectChoice, Choice, ComparisonStatus, Split, Strength
from .selectors import COMPARISON_ORDERS


ITEM_FIELD_HELP = "The opaque token of the comparison on the annotator's screen (Assignment.token)."
SCREEN_CHOICES = [("left", "left is better"), ("right", "right is better"), (Choice.TIE, "tie"), (Choice.BOTH_BAD, "both bad")]
SCREEN_ASPECT_CHOICES = [("", "—"), ("left", "left"), ("right", "right"), (AspectChoice.TIE, "same")]


class VoteForm(forms.Form):
    """The annotator page's vote: in screen terms, for the item on screen (never a/b or completion ids)."""

    item = forms.CharField(max_length=24, widget=forms.HiddenInput, help_text=ITEM_FIELD_HELP)
    choice = forms.ChoiceField(choices=SCREEN_CHOICES)
    strength = forms.ChoiceField(choices=[("", "—"), *Strength.choices], required=False)
    rationale = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea)
    helpfulness = forms.ChoiceField(choices=SCREEN_ASPECT_CHOICES, required=False)
    harmlessness = forms.ChoiceField(choices=SCREEN_ASPECT_CHOICES, required=False)
    honesty = forms.ChoiceField(choices=SCREEN_ASPECT_CHOICES, required=False)
    ms_on_item = forms.IntegerField(required=False, min_value=0, max_value=24 * 3600 * 1000)
    # Its length is checked by services.vote_submit (MAX_DEMONSTRATION_CHARS), after line breaks are normalised.
    demonstration = forms.CharField(required=False, strip=False, widget=forms.Textarea)


class SkipForm(forms.Form):
    """Skip the item on screen, optionally flagging it: ``skip_reason`` (a ``SkipReason`` value, or
    empty for a plain skip) and ``skip_note``; services.assignment_skip checks the pair."""

    item = forms.CharField(max_length=24, help_text=ITEM_FIELD_HELP)
    skip_reason = forms.CharField(required=False, max_length=32)
    skip_note = forms.CharField(required=False, strip=False, widget=forms.Textarea)


class ComparisonFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "any status"), *ComparisonStatus.choices], required=False)
    split = forms.ChoiceField(choices=[("", "any split"), *Split.choices], required=False)
    model_name = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=100)
    order = forms.ChoiceField(choices=list(COMPARISON_ORDERS.items()), required=False)
    identity_leak = forms.ChoiceField(
        choices=[("", "revealing or not"), ("flagged", "reveals the model"), ("clean", "not flagged")], required=False,
        label="Identity leak",
    )
    identity_pattern = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)


class PreferenceImportForm(forms.Form):
    """An uploaded preference file for ``feedback.imports.preferences_import``."""

    file = forms.FileField(help_text="JSON lines (.jsonl or .jsonl.gz) or Parquet; told by its content.")
    format = forms.ChoiceField(
        choices=[("trl", "TRL preference (prompt/chosen/rejected)"), ("hh-rlhf", "HH-RLHF transcripts"), ("arena", "Chatbot-Arena battles")]
    )
    source = forms.CharField(
        required=False, max_length=100, help_text="Name of the new prompts, the votes and the system user (default per format)."
    )
    model_name = forms.CharField(
        required=False, max_length=200, help_text="Model name of both completions (TRL, HH-RLHF; default: the source)."
    )
    split = forms.ChoiceField(choices=[("", "by prompt hash"), *Split.choices], required=False)
    eval_fraction = forms.FloatField(min_value=0, max_value=1, initial=0.1, required=False)
    skip_refused = forms.BooleanField(
        required=False, label="Skip refused rows",
        help_text="Import the other rows when some are valid but cannot be stored (multi-message responses) or are "
        "flagged; otherwise such a row imports nothing.",
    )
    allow_flagged = forms.BooleanField(
        required=False, label="Import flagged rows",
        help_text="Import rows flagged as doubtful (a margin or other optional column missing while other rows have it, "
        "a response that is a strict prefix of the other, transcripts that differ before the last turn) and mark their "
        "comparisons; snapshots and exports leave marked comparisons out unless include_flagged.",
    )


class VoteUndoForm(forms.Form):
    """Undo one of the annotator's own votes (the annotate page's "Undo" and the history page)."""

    vote = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    next = forms.ChoiceField(choices=[("annotate", "annotate"), ("history", "history")], required=False)


class VoteReviseForm(forms.Form):
    """Revise one of the annotator's own votes from the history page, in screen terms."""

    choice = forms.ChoiceField(choices=SCREEN_CHOICES)
    strength = forms.ChoiceField(choices=[("", "—"), *Strength.choices], required=False)
    rationale = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea)
