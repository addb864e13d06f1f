"""Ollama backend on its real wire format (NDJSON from /api/chat), replayed through httpx.MockTransport."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from http_replay import CutStream, Replay

from rag.errors import LLMError
from rag.llm import Message, make_backend
from rag.llm.http import RetryPolicy
from rag.llm.ollama import OllamaBackend, normalize_host
from rag.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
HOST = "http://ollama.test:11434"
MSGS = [Message("system", "Answer from the abstracts."), Message("user", "What is RAG?")]




def line(content: str = "", done: bool = False, **extra) -> dict:
    return {"model": "llama3.2:1b", "created_at": "2024-11-22T14:03:51.1Z",
            "message": {"role": "assistant", "content": content}, "done": done, **extra}


def ndjson(*objs: dict | str) -> bytes:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs).encode()


def ok(body: bytes | httpx.SyncByteStream) -> httpx.Response:
    headers = {"content-type": "application/x-ndjson"}
    if isinstance(body, bytes):
        return httpx.Response(200, headers=headers, content=body)
    return httpx.Response(200, headers=headers, stream=body)


GOOD = ndjson(line("Hello"), line(" world"), line("", True, done_reason="stop", eval_count=2))


def backend(handler, sleeps: list[float] | None = None, **overrides) -> OllamaBackend:
    fields = {"llm": "ollama", "ollama_host": "ollama.test:11434", "llm_model": "llama3.2:1b", "llm_timeout": 9.0,
              **overrides}
    retry = RetryPolicy(sleep=(sleeps if sleeps is not None else []).append)
    return OllamaBackend.from_settings(Settings(**fields), transport=httpx.MockTransport(handler), retry=retry)


def fault(b: OllamaBackend, host: str = HOST) -> str:
    with pytest.raises(LLMError) as info:
        list(b.stream(MSGS))
    assert f"ollama backend at {host}" in str(info.value)
    return str(info.value)


def test_recorded_stream_and_request_body():
    replay = Replay(ok((FIXTURES / "ollama_chat_stream.ndjson").read_bytes()))
    b = backend(replay)
    pieces = list(b.stream(MSGS))
    assert "".join(pieces) == "Retrieval-augmented generation (RAG) combines search with a language model."
    assert len(pieces) == 15  # the final done line's empty content is not a piece
    request = replay.requests[0]
    assert str(request.url) == f"{HOST}/api/chat" and "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": "llama3.2:1b", "stream": True, "options": {"temperature": 0},
        "messages": [{"role": "system", "content": "Answer from the abstracts."},
                     {"role": "user", "content": "What is RAG?"}]}


def test_complete_and_make_backend():
    settings = Settings(llm="ollama", llm_model="m", ollama_host="ollama.test:11434")
    b = make_backend(settings, transport=httpx.MockTransport(Replay(ok(GOOD))))
    assert isinstance(b, OllamaBackend) and b.complete(MSGS) == "Hello world"
    assert repr(b) == f"OllamaBackend(url='{HOST}', model='m')"


def test_timeouts_come_from_settings():
    timeout = backend(Replay())._client.timeout
    assert timeout.read == 9.0 and timeout.connect is not None and timeout.connect < 9.0


@pytest.mark.parametrize(("given", "expected"), [
    ("ollama.test:11434", HOST), ("ollama.test", HOST), ("0.0.0.0", "http://0.0.0.0:11434"),
    ("127.0.0.1:8080", "http://127.0.0.1:8080"), ("", "http://127.0.0.1:11434"),
    ("http://ollama.test:11434/", HOST), ("https://ollama.example", "https://ollama.example")])
def test_host_without_scheme(given, expected):
    assert normalize_host(given) == expected


def test_host_without_scheme_reaches_http_url():
    replay = Replay(ok(GOOD))
    backend(replay, ollama_host="ollama.test").complete(MSGS)
    assert str(replay.requests[0].url) == f"{HOST}/api/chat"


def test_error_line_mid_stream():
    body = ndjson(line("Par"), {"error": "an error was encountered while running the model: unexpected EOF"})
    message = fault(backend(Replay(ok(body))))
    assert "unexpected EOF" in message and "after 3 characters" in message


def test_unknown_model_404():
    replay = Replay(httpx.Response(404, json={"error": 'model "nope" not found, try pulling it first'}))
    message = fault(backend(replay, llm_model="nope"))
    assert "HTTP 404" in message and "`ollama pull nope`" in message and "try pulling it first" in message
    assert len(replay.requests) == 1


def test_wrong_path_404():
    message = fault(backend(Replay(httpx.Response(404, text="404 page not found"))))
    assert f"{HOST}/api/chat does not exist" in message and "OLLAMA_HOST" in message


def test_malformed_line():
    message = fault(backend(Replay(ok(ndjson(line("ok"), '{"message": {"content": "x"')))))
    assert "malformed NDJSON line" in message and "after 2 characters" in message


def test_cut_stream_without_done_line():
    assert "stream cut after 11 characters" in fault(backend(Replay(ok(ndjson(line("Hello"), line(" world"))))))


def test_connection_lost_mid_stream_is_not_retried():
    replay = Replay(ok(CutStream(ndjson(line("Hel")), httpx.ReadError("connection reset"))), ok(GOOD))
    message = fault(backend(replay))
    assert "stream cut after 3 characters" in message and len(replay.requests) == 1


def test_empty_completion():
    assert "empty completion" in fault(backend(Replay(ok(ndjson(line("", True, done_reason="stop"))))))


def test_500_then_success_is_retried():
    replay = Replay(httpx.Response(500, json={"error": "llama runner process has terminated"}), ok(GOOD))
    sleeps: list[float] = []
    assert backend(replay, sleeps).complete(MSGS) == "Hello world"
    assert sleeps == [0.5] and len(replay.requests) == 2


def test_500_every_time():
    replay = Replay(*[httpx.Response(500, json={"error": "llama runner process has terminated"})] * 3)
    message = fault(backend(replay))
    assert "HTTP 500" in message and "after 3 tries" in message and "llama runner process" in message


def test_connection_refused():
    replay = Replay(*[httpx.ConnectError("[Errno 111] Connection refused")] * 3)
    sleeps: list[float] = []
    message = fault(backend(replay, sleeps))
    assert "Connection refused" in message and "OLLAMA_HOST" in message and sleeps == [0.5, 1.0]


def test_read_timeout():
    message = fault(backend(Replay(httpx.ReadTimeout("timed out"))))
    assert "9 s" in message and "RAG_LLM_TIMEOUT" in message


def tags(*names: str) -> httpx.Response:
    return httpx.Response(200, json={"models": [{"name": n, "model": n, "size": 1} for n in names]})


def test_default_model_when_exactly_one_is_pulled():
    replay = Replay(tags("qwen2.5:0.5b"), ok(GOOD))
    b = backend(replay, llm_model=None)
    assert b.model == "qwen2.5:0.5b" and str(replay.requests[0].url) == f"{HOST}/api/tags"
    b.complete(MSGS)
    assert json.loads(replay.requests[1].content)["model"] == "qwen2.5:0.5b"


@pytest.mark.parametrize("names", [(), ("llama3.2:1b", "nomic-embed-text:latest")])
def test_default_model_needs_exactly_one(names):
    with pytest.raises(LLMError, match="RAG_LLM_MODEL") as info:
        backend(Replay(tags(*names)), llm_model=None)
    assert all(n in str(info.value) for n in names)
