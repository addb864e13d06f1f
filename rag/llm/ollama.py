"""Ollama chat backend over its native API.

Streams `POST {OLLAMA_HOST}/api/chat` as NDJSON: one `{"message": {"content": ...}, "done": false}`
object a line, a last `"done": true` line with `done_reason` and counters, and `{"error": "..."}` lines on
faults. Reasoning models also send `message.thinking`, which is never part of the answer.

With no model configured, `GET /api/tags` decides: exactly one pulled model is used; none or several
is an error listing them (a machine often holds an embedding model too, which cannot chat).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from rag.llm.base import Message
from rag.llm.http import (
    RetryPolicy,
    StreamFault,
    StreamingBackend,
    make_client,
    parse_json_line,
    token_limit_reached,
    with_scheme,
)

if TYPE_CHECKING:
    from rag.settings import Settings

DEFAULT_HOST = "http://127.0.0.1:11434"


def normalize_host(host: str) -> str:
    """Read OLLAMA_HOST as Ollama does: 'host', 'host:port' or a URL; no scheme means http and port 11434."""
    host = host.strip()
    if not host:
        return DEFAULT_HOST
    if "://" not in host:
        url = with_scheme(host)
        parts = urlsplit(url)
        return url if parts.port else urlunsplit(parts._replace(netloc=f"{parts.netloc}:11434"))
    return with_scheme(host)  # an explicit scheme keeps that scheme's default port, as in Ollama


class NDJSONDecoder:
    def __init__(self) -> None:
        self.done = False
        self.cut: str | None = None
        self._text = False  # any answer text so far

    def feed(self, line: str) -> str | None:
        if not line.strip():
            return None
        event = parse_json_line(line, "NDJSON")
        if event.get("error"):
            raise StreamFault(f"server error in stream: {event['error']}")
        content = (event.get("message") or {}).get("content")
        content = content if isinstance(content, str) else None
        self._text = self._text or bool(content)
        if event.get("done"):
            self.done = True
            if event.get("done_reason") == "length":  # num_predict or the context ran out
                self.cut = token_limit_reached('done_reason "length"', self._text)
        return content

    def flush(self) -> str | None:
        return None


class OllamaBackend(StreamingBackend):
    name = "ollama"
    chat_path = "api/chat"
    # Ollama answers 401 {"error": "unauthorized", "signin_url": ...} for cloud models when not signed in.
    auth_hint = "for a cloud model run `ollama signin`; else check the credentials of the proxy in front of Ollama"
    url_hint = "check OLLAMA_HOST"

    @classmethod
    def from_settings(cls, settings: Settings, transport: httpx.BaseTransport | None = None,
                      retry: RetryPolicy | None = None) -> OllamaBackend:
        base = normalize_host(settings.ollama_host)
        client = make_client(base, settings.llm_timeout, transport, {})
        backend = cls(base, settings.llm_model or "", client, timeout=settings.llm_timeout, retry=retry,
                      max_tokens=settings.answer_token_cap, deadline=settings.llm_deadline)
        if not settings.llm_model:
            backend.model = backend._pulled_model()
        return backend

    def _payload(self, messages: list[Message]) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": 0}
        if self.max_tokens is not None:
            options["num_predict"] = self.max_tokens
        return {"model": self.model, "messages": [{"role": m.role, "content": m.content} for m in messages],
                "stream": True, "options": options}

    def _decoder(self) -> NDJSONDecoder:
        return NDJSONDecoder()

    def _explain_status(self, status: int, server_says: str, path: str) -> str:
        # An unknown model is 404 {"error": "model 'x' not found"} (or older/scheduler:
        # 'model "x" not found, try pulling it first'); an unknown path is 404 "404 page not found".
        if status == 404 and "model" in server_says.lower():
            return (f"HTTP 404: model {self.model!r} is not pulled here; run `ollama pull {self.model}` "
                    "or set RAG_LLM_MODEL")
        return super()._explain_status(status, server_says, path)

    def _pulled_model(self) -> str:
        listing = self._get_json("api/tags")
        entries = listing.get("models") if isinstance(listing, dict) else None
        names = [e["name"] for e in entries or [] if isinstance(e, dict) and isinstance(e.get("name"), str)]
        return self._only_model(names, "no model configured and none is pulled; run `ollama pull MODEL` and set "
                                "RAG_LLM_MODEL", "{n} are pulled")
