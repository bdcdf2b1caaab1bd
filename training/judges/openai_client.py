"""Moved to ``training.backends.openai_client`` (generation uses it too); kept for the judges' imports."""
from training.backends.openai_client import ChatClient, ChatResult, EndpointSettings  # noqa: F401
