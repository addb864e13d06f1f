"""OpenAI-compatible chat backend (OpenAI, vLLM, llama.cpp server, LM Studio, Ollama's /v1).

Streams `POST {base}/chat/completions` as server-sent events: `data: {json}` events whose
`choices[0].delta.content` carry the text, ended by `data: [DONE]`. No vendor SDK: httpx only.

With no model configured, `GET {base}/models` decides: exactly one served model is used; none or
several is an error listing them, since "the first of OpenAI's dozens" would be an arbitrary pick.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from rag.llm.base import Message
from rag.llm.http import (
    RetryPolicy,
    StreamFault,
    StreamingBackend,
    error_text,
    make_client,
    parse_json_line,
    token_limit_reached,
    with_scheme,
)

if TYPE_CHECKING:
    from rag.settings import Settings


def normalize_base_url(url: str) -> str:
    """Accept http://host:port and http://host:port/v1 alike: a bare host means the /v1 API."""
    url = with_scheme(url)
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


class SSEDecoder:
    """Server-sent events per the WHATWG rules: fields per line, an event ends at a blank line."""

    def __init__(self) -> None:
        self.done = False
        self.cut: str | None = None
        self._finished = False   # a choice carried finish_reason: the answer itself is whole
        self._text = False       # any answer text so far
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):          # comment, used as keep-alive
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "error":            # some llama.cpp server versions send a bare `error: {json}` line
            raise StreamFault(f"server error in stream: {error_text(parse_json_line(value, 'SSE'))}")
        return None                       # event:, id:, retry: carry nothing we need

    def flush(self) -> str | None:
        piece = self._dispatch()          # a last event without its blank line
        if self._finished:                # some servers omit [DONE] after a finish_reason
            self.done = True
        return piece

    def _dispatch(self) -> str | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        if data.strip() == "[DONE]":
            self.done = True
            return None
        event = parse_json_line(data, "SSE data")
        if event.get("error") or event.get("object") == "error":  # OpenAI's shape; vLLM's flat one
            raise StreamFault(f"server error in stream: {error_text(event)}")
        choices = event.get("choices")
        if not choices:                   # usage-only chunk (stream_options.include_usage) or similar
            return None
        choice = choices[0]
        if not isinstance(choice, dict):
            raise StreamFault(f"malformed SSE data {data[:80]!r}")
        content = (choice.get("delta") or {}).get("content")
        content = content if isinstance(content, str) else None
        self._text = self._text or bool(content)
        if choice.get("finish_reason"):
            self._finished = True
            if choice["finish_reason"] == "length":  # max_tokens or the server's context ran out
                self.cut = token_limit_reached('finish_reason "length"', self._text)
        return content


def _says_unknown_model(server_says: str) -> bool:
    # "The model `x` does not exist" (OpenAI, vLLM), "model 'x' not found" (LM Studio, Ollama's /v1);
    # not "This model's maximum context length is ...", which is a 400 about the prompt.
    text = server_says.lower()
    return "model" in text and any(p in text for p in ("not exist", "not found", "unknown", "no such", "invalid model"))


class OpenAIBackend(StreamingBackend):
    name = "openai"
    chat_path = "chat/completions"
    auth_hint = "check OPENAI_API_KEY"
    url_hint = "check OPENAI_BASE_URL (usually ending in /v1)"

    @classmethod
    def from_settings(cls, settings: Settings, transport: httpx.BaseTransport | None = None,
                      retry: RetryPolicy | None = None) -> OpenAIBackend:
        base = normalize_base_url(settings.openai_base_url)
        secret = settings.openai_api_key.get_secret_value().strip() if settings.openai_api_key else ""
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        client = make_client(base, settings.llm_timeout, transport, headers)
        backend = cls(base, settings.llm_model or "", client, timeout=settings.llm_timeout, retry=retry,
                      max_tokens=settings.answer_token_cap, deadline=settings.llm_deadline)
        if not settings.llm_model:
            backend.model = backend._served_model()
        return backend

    def _payload(self, messages: list[Message]) -> dict[str, Any]:
        body = {"model": self.model, "messages": [{"role": m.role, "content": m.content} for m in messages],
                "stream": True, "temperature": 0}
        if self.max_tokens is not None:
            # max_tokens, not max_completion_tokens: vLLM, llama.cpp, LM Studio and Ollama's /v1 read it.
            body["max_tokens"] = self.max_tokens
        return body

    def _decoder(self) -> SSEDecoder:
        return SSEDecoder()

    def _explain_status(self, status: int, server_says: str, path: str) -> str:
        # Servers report an unknown model as 404 (OpenAI, vLLM) or 400 (others); the body says which.
        if status in (400, 404) and path == self.chat_path and _says_unknown_model(server_says):
            return (f"HTTP {status}: the server does not serve model {self.model!r}; set RAG_LLM_MODEL "
                    f"to one listed by GET {self.url}/models")
        if status == 404 and path == "models":
            return f"HTTP 404: {self.url}/models does not exist; {self.url_hint}, or set RAG_LLM_MODEL"
        return super()._explain_status(status, server_says, path)

    def _served_model(self) -> str:
        listing = self._get_json("models")
        entries = listing.get("data") if isinstance(listing, dict) else None
        ids = [e["id"] for e in entries or [] if isinstance(e, dict) and isinstance(e.get("id"), str)]
        return self._only_model(ids, "no model configured and GET /models lists none; set RAG_LLM_MODEL",
                                "the server serves {n}")
