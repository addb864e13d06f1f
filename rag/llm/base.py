"""The one small interface every answer backend implements, extractive included."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

    from rag.settings import Settings


@dataclass(frozen=True)
class Message:
    role: str      # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class SourceText:
    n: int                    # the number the answer cites it by
    title: str
    abstract: str
    relevance: float | None   # cosine similarity of its best chunk to the question


@dataclass(frozen=True)
class AnswerRequest:
    """What a backend answers from: the question and its numbered sources, and the same rendered
    as prompt messages for the backends that read a prompt."""
    question: str
    sources: list[SourceText]
    messages: list[Message] = field(default_factory=list)


class ChatBackend(Protocol):
    name: str      # one of rag.settings.BACKENDS: shown to users and in --json "backend"
    url: str       # base URL, for error messages (never with credentials); "" when local
    model: str | None

    def answer(self, request: AnswerRequest) -> Iterator[str]:
        """Yield the answer's text as it comes. Raises rag.errors.LLMError, whose message names the
        backend and URL, on any fault; never leaks an API key."""
        ...

    def complete(self, messages: list[Message]) -> str:
        """The whole reply at once (used to condense follow-up questions). A backend without a
        model raises LLMError, and the caller falls back to a heuristic."""
        ...

    def close(self) -> None:
        """Release connections; the UI calls it when it drops a backend from its cache."""
        ...


def make_backend(settings: Settings, transport: httpx.BaseTransport | None = None) -> ChatBackend:
    """The backend named by settings.llm."""
    if settings.llm == "openai":
        from rag.llm.openai import OpenAIBackend

        return OpenAIBackend.from_settings(settings, transport=transport)
    if settings.llm == "ollama":
        from rag.llm.ollama import OllamaBackend

        return OllamaBackend.from_settings(settings, transport=transport)
    from rag.llm.extractive import ExtractiveBackend

    return ExtractiveBackend.from_settings(settings)
