"""REST API views: parse, call one service or selector, answer. Every queryset is scoped to the caller."""
from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import revisions, selectors, services
from feedback.quality import gold_services
from feedback.models import Campaign, Comparison, Completion, Prompt, Vote
from feedback.roles import is_feedback_admin

from .permissions import IsAnnotator, IsFeedbackAdmin
from .schema import conflict, one_or_many
from .serializers import (
    MAX_BULK,
    AdminComparisonSerializer,
    AnnotatorComparisonSerializer,
    AnnotatorVoteSerializer,
    AssignmentSerializer,
    ComparisonCreateSerializer,
    ComparisonStatusFilter,
    NextAssignmentSerializer,
    CompletionFilter,
    CompletionSerializer,
    PromptFilter,
    PromptSerializer,
    SkipRequestSerializer,
    SkipSerializer,
    VoteFilter,
    VoteReviseSerializer,
    VoteSerializer,
    VoteSubmitSerializer,
    VoteUndoSerializer,
)


def _items(data) -> tuple[list, bool]:
    """A request body that is one object or a list of up to MAX_BULK objects -> (items, was_list)."""
    if isinstance(data, list):
        if not data:
            raise ValidationError({"non_field_errors": ["the list is empty"]})
        if len(data) > MAX_BULK:
            raise ValidationError({"non_field_errors": [f"{len(data)} items; at most {MAX_BULK} per request"]})
        return data, True
    if isinstance(data, dict):
        return [data], False
    raise ValidationError({"non_field_errors": ["expected an object or a list of objects"]})


def _validated(serializer_class, items: list, was_list: bool, **kwargs) -> list[dict]:
    serializer = serializer_class(data=items, many=True, **kwargs)
    if not serializer.is_valid():
        errors = serializer.errors
        # DRF gives a list with one entry per item, or (LIST_SERIALIZER_ERRORS_AS_DICT, the default
        # from 3.16) a dict {index: errors} of the bad items only.
        by_index = {str(i): e for i, e in (errors.items() if isinstance(errors, dict) else enumerate(errors)) if e}
        if was_list:
            raise ValidationError(by_index)
        raise ValidationError(by_index["0"])
    return serializer.validated_data


def _filters(serializer_class, request) -> dict:
    """The query's filters checked by ``serializer_class``: 400 naming each bad one.

    A plain dict, not the ``QueryDict``: DRF reads an empty form value as "not given", so ``?status=``
    would pass unchecked and match everything; here it is refused like any value outside the choices.
    """
    serializer = serializer_class(
        data=request.query_params.dict(), context={"is_admin": is_feedback_admin(request.user)}
    )
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PromptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Prompts (admins). POST takes one prompt or a list of up to 1000; all are stored or none."""

    serializer_class = PromptSerializer
    permission_classes = [IsFeedbackAdmin]

    def get_queryset(self):
        qs = Prompt.objects.all()
        filters = _filters(PromptFilter, self.request) if self.action == "list" else {}
        for field in ("split", "source"):
            if filters.get(field):
                qs = qs.filter(**{field: filters[field]})
        if filters.get("tag"):
            qs = qs.filter(pk__in=selectors.prompts_with_tag(filters["tag"]).values("pk"))
        return qs

    @extend_schema(parameters=[PromptFilter])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=one_or_many(PromptSerializer, "PromptOneOrMany"),
        responses={201: one_or_many(PromptSerializer, "PromptOneOrMany")},
    )
    def create(self, request):
        items, was_list = _items(request.data)
        data = _validated(PromptSerializer, items, was_list)
        prompts = services.prompt_create_bulk(
            prompts=[{**item, "messages": [dict(m) for m in item["messages"]]} for item in data]
        )
        body = PromptSerializer(prompts, many=True).data
        return Response(body if was_list else body[0], status=status.HTTP_201_CREATED)


class CompletionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Completions (admins). POST takes one or a list; ``is_empty`` is derived from the text."""

    serializer_class = CompletionSerializer
    permission_classes = [IsFeedbackAdmin]

    def get_queryset(self):
        qs = Completion.objects.all()
        filters = _filters(CompletionFilter, self.request) if self.action == "list" else {}
        if filters.get("prompt"):
            qs = qs.filter(prompt_id=filters["prompt"])
        if filters.get("model_name"):
            qs = qs.filter(model_name=filters["model_name"])
        return qs

    @extend_schema(parameters=[CompletionFilter])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=one_or_many(CompletionSerializer, "CompletionOneOrMany"),
        responses={201: one_or_many(CompletionSerializer, "CompletionOneOrMany")},
    )
    def create(self, request):
        items, was_list = _items(request.data)
        data = _validated(CompletionSerializer, items, was_list)
        completions = services.completion_create_bulk(
            completions=[{**item, "prompt": item["prompt"]} for item in data]
        )
        body = CompletionSerializer(completions, many=True).data
        return Response(body if was_list else body[0], status=status.HTTP_201_CREATED)


@extend_schema_view(list=extend_schema(parameters=[ComparisonStatusFilter]))
class ComparisonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Comparisons: admins see all (with model names); annotators see only those assigned to them."""

    queryset = Comparison.objects.none()  # for the schema; get_queryset scopes real requests
    lookup_value_regex = "[0-9]+"  # ``skip`` turns the id into an int; anything else is a 404

    def get_permissions(self):
        if self.action in ("create", "gold"):
            return [IsFeedbackAdmin()]
        if self.action == "skip":
            return [IsAnnotator()]
        return [IsAuthenticated()]

    def get_serializer_class(self):
        if self.action == "create":
            return ComparisonCreateSerializer
        if self.action == "skip":
            return SkipSerializer
        return AdminComparisonSerializer if is_feedback_admin(self.request.user) else AnnotatorComparisonSerializer

    def get_queryset(self):
        filters = _filters(ComparisonStatusFilter, self.request) if self.action == "list" else {}
        return selectors.comparison_list(user=self.request.user, filters=filters)

    @extend_schema(
        request=one_or_many(ComparisonCreateSerializer, "ComparisonCreateOneOrMany"),
        responses={201: one_or_many(AdminComparisonSerializer, "AdminComparisonOneOrMany")},
    )
    def create(self, request):
        items, was_list = _items(request.data)
        data = _validated(ComparisonCreateSerializer, items, was_list)
        created = []
        with transaction.atomic():
            for index, item in enumerate(data):
                try:
                    if "prompt" in item and not isinstance(item["completion_a"], Completion):
                        created.append(services.comparison_create_inline(**item))
                    else:
                        item.pop("prompt", None)
                        created.append(services.comparison_create(**item))
                except Exception as error:  # name the failing item, then let the handler answer
                    if was_list and hasattr(error, "message_dict"):
                        raise ValidationError({str(index): error.message_dict}) from None
                    raise
        body = AdminComparisonSerializer(created, many=True).data
        return Response(body if was_list else body[0], status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SkipRequestSerializer,
        responses={200: SkipSerializer, 409: conflict("You already voted on this comparison (code vote_conflict).")},
    )
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        """Skip a comparison assigned to you; it is not served to you again. An optional ``reason``
        (identity_leak, personal_data, broken, other) flags it for the admins, with a ``note``
        (required for other)."""
        serializer = SkipRequestSerializer(data=request.data if request.data else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assignment = services.assignment_skip(
            annotator=request.user, comparison_id=int(pk), reason=data["reason"], note=data["note"]
        )
        return Response(SkipSerializer(assignment).data)


    @extend_schema(
        request=inline_serializer("GoldChoice", {"gold_choice": serializers.CharField(allow_blank=True)}),
        responses={200: AdminComparisonSerializer},
    )
    @action(detail=True, methods=["post"])
    def gold(self, request, pk=None):
        """Admins: set the comparison's gold answer (``a``, ``b``, ``tie``, ``both_bad``) or clear it
        (``""``). Votes are scored against it when read, so past votes are re-scored."""
        comparison = self.get_object()
        gold_choice = request.data.get("gold_choice") if isinstance(request.data, dict) else None
        comparison = gold_services.comparison_gold_set(comparison=comparison, gold_choice=gold_choice)
        return Response(AdminComparisonSerializer(self.get_queryset().get(pk=comparison.pk)).data)


class NextAssignmentView(APIView):
    """Lease the next comparison to the caller (200), or 204 when nothing is left for them."""

    permission_classes = [IsAnnotator]

    @extend_schema(
        request=NextAssignmentSerializer,
        parameters=[OpenApiParameter("campaign", str, description="Claim inside this campaign only (its slug).")],
        responses={
            200: AssignmentSerializer,
            204: OpenApiResponse(description="Queue empty"),
            403: OpenApiResponse(description="The campaign is not active, or you are not in its pool (not_in_pool)."),
            404: OpenApiResponse(description="No campaign has that slug."),
        },
    )
    def post(self, request):
        """Only comparisons of active campaigns whose pool holds you are served (``campaign``: of that one)."""
        slug = request.query_params.get("campaign") or ""
        if not slug and isinstance(request.data, dict) and request.data:  # most claims send no body: nothing to parse
            body = NextAssignmentSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            slug = body.validated_data.get("campaign", "")
        campaign = None
        if slug:
            campaign = Campaign.objects.filter(slug=slug).first()
            if campaign is None:
                raise NotFound(f"No campaign named {slug!r}.")
        assignment = services.assignment_claim(annotator=request.user, campaign=campaign)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        display = selectors.assignment_display(assignment=assignment)
        return Response(AssignmentSerializer(display).data)


_CLOSED = "The comparison is complete or retired (comparison_closed): its votes can no longer change."


@extend_schema_view(list=extend_schema(parameters=[VoteFilter]))
class VoteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Votes: admins see all (in stored terms, a/b), annotators their own (in screen terms, left/right).
    POST stores a vote on the item assigned to you (``item`` token or ``comparison``): 201 when
    stored, 200 when the identical vote was already stored, 409 for a different one or an item
    that is no longer yours to vote on. While the comparison is open (409 once it is complete or
    retired) you may undo your own vote (DELETE, or POST .../undo/ to get the item back) or revise
    it (PATCH); each change is kept in an audit trail."""

    queryset = Vote.objects.none()  # for the schema; get_queryset scopes real requests

    def get_serializer_class(self):
        return VoteSerializer if is_feedback_admin(self.request.user) else AnnotatorVoteSerializer

    def get_permissions(self):
        changes = ("create", "destroy", "undo", "partial_update")
        return [IsAnnotator()] if self.action in changes else [IsAuthenticated()]

    def get_queryset(self):
        filters = _filters(VoteFilter, self.request) if self.action == "list" else {}
        return selectors.vote_list(user=self.request.user, filters=filters)

    @extend_schema(
        request=VoteSubmitSerializer,
        responses={
            201: AnnotatorVoteSerializer,
            200: AnnotatorVoteSerializer,
            409: conflict(
                "A different vote is stored (vote_conflict, with that vote), the lease ran out and its slot went to "
                "another annotator (lease_expired), the comparison takes no more votes (comparison_closed), or "
                "the item is no longer the one on your screen (item_changed)."
            ),
        },
    )
    def create(self, request):
        serializer = VoteSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        vote, created = services.vote_submit(
            annotator=request.user,
            comparison_id=data.get("comparison"),
            item=data.get("item", ""),
            choice=data["choice"],
            strength=data["strength"],
            rationale=data["rationale"],
            aspects={k: data[k] for k in ("helpfulness", "harmlessness", "honesty")},
            ms_on_item=data.get("ms_on_item"),
            demonstration=data["demonstration"],
        )
        if getattr(vote, "gold_check", None) is not None:
            vote.gold_note = vote.gold_check  # the answer then carries the gold note (AnnotatorVoteSerializer)
        # The answer to a vote is in the voter's screen terms (left/right), whoever votes.
        body = AnnotatorVoteSerializer(vote).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=None,
        responses={
            204: OpenApiResponse(description="Withdrawn; the item is yours to vote on again."),
            409: conflict(_CLOSED),
        },
    )
    def destroy(self, request, pk=None):
        """Undo your own vote while its comparison is open: it is withdrawn (the change is audited) and
        the item comes back to you (``POST .../undo/`` answers with its new item token)."""
        revisions.vote_undo(annotator=request.user, vote_id=_vote_id(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: VoteUndoSerializer, 409: conflict(_CLOSED)})
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        """Undo your own vote while its comparison is open; answers with the item's new token, your
        restored lease and what the vote said (screen terms), to vote again."""
        undone = revisions.vote_undo(annotator=request.user, vote_id=_vote_id(pk))
        return Response(VoteUndoSerializer(undone).data)

    @extend_schema(request=VoteReviseSerializer, responses={200: AnnotatorVoteSerializer, 409: conflict(_CLOSED)})
    def partial_update(self, request, pk=None):
        """Revise your own vote while its comparison is open (fields in your screen terms; those
        left out keep their value). Answers with the vote as it now is."""
        serializer = VoteReviseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vote, _ = revisions.vote_revise(annotator=request.user, vote_id=_vote_id(pk), changes=serializer.validated_data)
        return Response(AnnotatorVoteSerializer(vote).data)


def _vote_id(pk) -> int:
    """The path's vote id as an int (0 for junk, which the services answer with 404)."""
    try:
        return int(pk)
    except (TypeError, ValueError):
        return 0
