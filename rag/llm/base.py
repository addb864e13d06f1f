"""The one small interface every chat backend implements."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

    from rag.settings import Settings


@dataclass(frozen=True)
class Message:
    role: str      # "system" | "user" | "assistant"
    content: str


class ChatBackend(Protocol):
    name: str      # "openai" | "ollama": shown to users and in --json "backend"
    url: str       # base URL, for error messages (never with credentials)
    model: str

    def stream(self, messages: list[Message]) -> Iterator[str]:
        """Yield the answer's text as it arrives. Raises rag.errors.LLMError, whose message names
        the backend and URL, on any fault; never leaks the API key."""
        ...

    def complete(self, messages: list[Message]) -> str:
        """The whole answer at once (used for condensing follow-up questions)."""
        ...


def make_backend(settings: Settings, transport: httpx.BaseTransport | None = None) -> ChatBackend:
    """Build the HTTP backend named by settings.llm ('openai' or 'ollama')."""
    if settings.llm == "openai":
        from rag.llm.openai import OpenAIBackend

        return OpenAIBackend.from_settings(settings, transport=transport)
    if settings.llm == "ollama":
        from rag.llm.ollama import OllamaBackend

        return OllamaBackend.from_settings(settings, transport=transport)
    raise ValueError(f"{settings.llm!r} is not an HTTP chat backend")
