"""factory_boy factories for the feedback models."""
from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from feedback.messages import messages_sha256
from feedback.models import Assignment, AssignmentStatus, Comparison, Completion, Prompt, Vote
from feedback.roles import roles_ensure

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(roles_ensure()[extracted])
            if extracted == "admin":
                self.is_staff = True
        self.save()


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"Question number {n}?"}])
    messages_sha256 = factory.LazyAttribute(lambda o: messages_sha256(o.messages))
    source = "test"
    split = "train"


class CompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Completion

    prompt = factory.SubFactory(PromptFactory)
    model_name = "model-x"
    text = factory.Sequence(lambda n: f"Answer {n}.")


class ComparisonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comparison

    prompt = factory.SubFactory(PromptFactory)
    completion_a = factory.SubFactory(CompletionFactory, prompt=factory.SelfAttribute("..prompt"), model_name="model-a")
    completion_b = factory.SubFactory(CompletionFactory, prompt=factory.SelfAttribute("..prompt"), model_name="model-b")
    votes_required = 1


class AssignmentFactory(factory.django.DjangoModelFactory):
    """A live lease of ``comparison`` to ``annotator`` (10 minutes from now unless told otherwise)."""

    class Meta:
        model = Assignment

    comparison = factory.SubFactory(ComparisonFactory)
    annotator = factory.SubFactory(UserFactory, role="annotator")
    status = AssignmentStatus.LEASED
    shown_left = "a"
    leased_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.leased_at + timedelta(minutes=10))


class VoteFactory(factory.django.DjangoModelFactory):
    """A vote row written directly (no service): for constraint tests and read-side fixtures."""

    class Meta:
        model = Vote

    comparison = factory.SubFactory(ComparisonFactory)
    annotator = factory.SubFactory(UserFactory, role="annotator")
    choice = "a"
    shown_left = "a"
