"""Ollama backend replaying Ollama's own wire format (tests/fixtures/ollama, see its README) through
httpx.MockTransport: NDJSON from /api/chat, JSON error bodies, the /api/tags listing."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from http_replay import CutStream, Endless, Replay
from http_replay import cut as cut_stream

from rag.errors import AnswerCut, LLMError
from rag.llm import Message, make_backend
from rag.llm.http import CHARS_PER_TOKEN, RetryPolicy
from rag.llm.ollama import OllamaBackend, normalize_host
from rag.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
HOST = "http://ollama.test:11434"
MSGS = [Message("system", "Answer from the abstracts."), Message("user", "What is RAG?")]
# A content line and the final done line of docs/api.md's streaming chat example.
CHUNK, FINAL = (json.loads(s) for s in (FIXTURES / "chat_stream.ndjson").read_text().splitlines())


def line(content: str = "", done: bool = False, **extra) -> dict:
    """The documented chunk (or final line) with other text; extra fields override."""
    base = FINAL if done else CHUNK
    return {**base, "message": {**base["message"], "content": content}, **extra}


def ndjson(*objs: dict | str) -> bytes:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs).encode()


def ok(body: bytes | httpx.SyncByteStream) -> httpx.Response:
    headers = {"content-type": "application/x-ndjson"}
    if isinstance(body, bytes):
        return httpx.Response(200, headers=headers, content=body)
    return httpx.Response(200, headers=headers, stream=body)


def upstream(name: str) -> httpx.Response:
    return ok((FIXTURES / name).read_bytes())


def error_body(name: str) -> httpx.Response:
    """An upstream error body; the file name starts with its HTTP status (gin's c.JSON content type)."""
    return httpx.Response(int(name.split("_")[0]), headers={"content-type": "application/json; charset=utf-8"},
                          content=(FIXTURES / name).read_bytes())


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
    replay = Replay(upstream("chat_stream.ndjson"))
    b = backend(replay)
    assert list(b.stream(MSGS)) == ["The"]  # the final done line's empty content is not a piece
    request = replay.requests[0]
    assert str(request.url) == f"{HOST}/api/chat" and "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": "llama3.2:1b", "stream": True, "options": {"temperature": 0, "num_predict": 240},
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


def test_final_line_without_message():
    # docs/api.md's "With History" example: the done line has no "message" at all.
    assert backend(Replay(upstream("chat_stream_history.ndjson"))).complete(MSGS) == "The"


def test_done_line_may_carry_text():
    # docs/api/streaming.mdx: the last, done line can still hold text.
    body = ndjson(line("Hi"), line("!", True, done_reason="stop"))
    assert backend(Replay(ok(body))).complete(MSGS) == "Hi!"


def test_thinking_never_reaches_the_answer():
    # Ollama thinks by default for thinking-capable models and streams it as message.thinking.
    answer = backend(Replay(upstream("chat_stream_thinking.ndjson"))).complete(MSGS)
    assert answer == "There are three."


def test_length_cuts_the_answer_keeping_its_text():
    # Was a warning with the answer returned; now the cut is an AnswerCut that carries the text.
    got: list[str] = []
    with pytest.raises(AnswerCut) as info:
        for piece in backend(Replay(upstream("chat_stream_length.ndjson"))).stream(MSGS):
            got.append(piece)
    assert got == ["The"] and info.value.text == "The" and info.value.reason == "length"
    assert str(info.value).startswith(f"ollama backend at {HOST}: answer stopped after 3 characters")
    assert 'done_reason "length"' in str(info.value) and "RAG_MAX_ANSWER_TOKENS is 240" in str(info.value)


def test_length_on_a_done_line_with_text_keeps_that_text():
    body = ndjson(line("Hi"), line(" there", True, done_reason="length"))
    with pytest.raises(AnswerCut) as info:
        list(backend(Replay(ok(body))).stream(MSGS))
    assert info.value.text == "Hi there"


# -- bounded output ----------------------------------------------------------------------------
def cut(b: OllamaBackend) -> tuple[AnswerCut, list[str]]:
    return cut_stream(b.stream(MSGS), f"ollama backend at {HOST}")


@pytest.mark.parametrize(("overrides", "sent"), [({"max_sentences": 3}, 180), ({"max_answer_tokens": 64}, 64)])
def test_body_carries_num_predict(overrides, sent):
    replay = Replay(ok(GOOD))
    backend(replay, **overrides).complete(MSGS)
    assert json.loads(replay.requests[0].content)["options"] == {"temperature": 0, "num_predict": sent}


def test_looping_stream_is_cut_keeping_the_text():
    words = "The method is designed to detect gradual shifts in the distribution of data.\n\n".split(" ")
    body = Endless(lambda i: ndjson(line(words[i % len(words)] + ("" if i % len(words) == len(words) - 1 else " "))))
    error, got = cut(backend(Replay(ok(body))))
    text = "".join(got)
    assert error.reason == "repeat" and "the answer repeated itself" in str(error)
    assert text.count("The method is designed") == 3 and body.closed


def test_endless_stream_is_stopped_by_the_client_side_cap():
    body = Endless(lambda i: ndjson(line(f" w{i}")))
    error, got = cut(backend(Replay(ok(body)), max_answer_tokens=40))
    assert error.reason == "max_tokens" and "reached RAG_MAX_ANSWER_TOKENS (40 tokens" in str(error)
    assert len("".join(got)) <= 40 * CHARS_PER_TOKEN and body.closed


def test_slow_endless_stream_is_stopped_by_the_deadline():
    body = Endless(lambda i: ndjson(line(f" w{i}")), delay=0.02)
    error, got = cut(backend(Replay(ok(body)), llm_deadline=0.5))
    assert error.reason == "deadline" and "ran past RAG_LLM_DEADLINE (0.5 s)" in str(error) and got


def test_length_spent_on_thinking():
    message = fault(backend(Replay(upstream("chat_stream_thinking_length.ndjson"))))
    assert "token limit" in message and "thinking" in message and "Okay" not in message


def test_error_line_mid_stream():
    message = fault(backend(Replay(upstream("chat_stream_error.ndjson"))))
    assert "server error in stream: an error was encountered while running the model" in message
    assert "after 3 characters" in message


@pytest.mark.parametrize("name", ["404_model_not_found.json", "404_model_not_found_try_pulling.json"])
def test_unknown_model_404(name):
    replay = Replay(error_body(name))
    message = fault(backend(replay, llm_model="nope"))
    assert "HTTP 404" in message and "`ollama pull nope`" in message
    assert json.loads((FIXTURES / name).read_text())["error"] in message  # the server's own words
    assert len(replay.requests) == 1


def test_model_that_cannot_chat_400():
    replay = Replay(error_body("400_does_not_support_chat.json"))
    message = fault(backend(replay, llm_model="bert"))
    assert "HTTP 400" in message and '"bert" does not support chat' in message and len(replay.requests) == 1


def test_cloud_model_without_signin_401():
    replay = Replay(error_body("401_unauthorized.json"))
    message = fault(backend(replay, llm_model="gpt-oss:120b-cloud"))
    assert "HTTP 401" in message and "`ollama signin`" in message and "unauthorized" in message
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


@pytest.mark.parametrize("body", ["500_runner_terminated.json", "503_server_busy.json"])
def test_server_error_then_success_is_retried(body):
    replay = Replay(error_body(body), ok(GOOD))
    sleeps: list[float] = []
    assert backend(replay, sleeps).complete(MSGS) == "Hello world"
    assert sleeps == [0.5] and len(replay.requests) == 2


def test_500_every_time():
    replay = Replay(*[error_body("500_runner_terminated.json") for _ in range(3)])
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


TAGS = json.loads((FIXTURES / "tags.json").read_text())  # docs/api.md: deepseek-r1:latest, llama3.2:latest


def tags(*names: str) -> httpx.Response:
    """docs/api.md's /api/tags listing, cut down or renamed to these names."""
    entry = TAGS["models"][1]
    return httpx.Response(200, json={"models": [{**entry, "name": n, "model": n} for n in names]})


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


def test_default_model_with_the_documented_listing():
    listing = httpx.Response(200, content=(FIXTURES / "tags.json").read_bytes())
    with pytest.raises(LLMError, match="2 are pulled") as info:
        backend(Replay(listing), llm_model=None)
    assert "deepseek-r1:latest, llama3.2:latest" in str(info.value)
