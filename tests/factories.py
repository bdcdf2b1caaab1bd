"""factory_boy factories for the feedback models."""
from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from feedback.messages import messages_sha256
from feedback.models import Comparison, Completion, Prompt
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
