"""Shared httpx plumbing for the HTTP chat backends (OpenAI-compatible and Ollama).

Both backends POST a JSON body and read a line-oriented stream back (SSE for OpenAI, NDJSON for
Ollama). `StreamingBackend` owns what they share: the client (with an injectable transport for
tests), retries with backoff before the first token, and turning every fault into one `LLMError`
that names the backend and its URL. A subclass supplies the path, the body, a line decoder and the
hints its errors give.

Retries happen only where repeating the request cannot duplicate or garble output: a connection
that never opened (or a pooled one the server closed before answering), HTTP 429 and 5xx, and
always before the first token has been handed on.

Every answer is bounded, whatever the server does: the body asks for at most `max_tokens`
(RAG_MAX_ANSWER_TOKENS), and the stream itself is stopped (the request closed) when its text passes
CHARS_PER_TOKEN characters a token (a server that ignores max_tokens), when it ends in one stretch
repeated REPEAT_COPIES times (a looping model), or when RAG_LLM_DEADLINE has passed since the
request began. The text streamed until then stands, and `AnswerCut` says which bound stopped it; so
does a server's own "length" finish after some text.
"""
from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx

from rag.errors import AnswerCut, ConfigError, LLMError
from rag.llm.base import AnswerRequest, Message
from rag.settings import display_url

log = logging.getLogger("rag.llm")

# Connecting is either quick or broken; only reading waits on the model, so it alone gets llm_timeout.
CONNECT_TIMEOUT = 5.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Raised by send() only before any response byte, i.e. before the server could have answered.
_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_KEY_LIKE = re.compile(r"\b(sk-|Bearer\s+)[^\s\"',]+")  # server echoes of a (masked) key

# English runs about 4 characters a token; 6 leaves room for long words and numbers, so a server
# that honours max_tokens always stops first and this only catches one that ignores it.
CHARS_PER_TOKEN = 6
# A looping model: its text ends in one stretch of at least REPEAT_MIN_CHARS characters (or a shorter
# one repeated to as many characters in all), REPEAT_COPIES times back to back.
REPEAT_MIN_CHARS = 30
REPEAT_COPIES = 3
REPEAT_WINDOW = 1500  # characters of the tail looked at: stretches up to 500 characters are caught
_SPACES = re.compile(r"\s+")
_LIST_NUMBER = re.compile(r"(?m)^[ \t]*\d+[.)][ \t]+")  # "3. " opening a line: a numbered list's counter


@dataclass(frozen=True)
class RetryPolicy:
    tries: int = 3
    base_delay: float = 0.5      # then 1.0, 2.0, ...
    max_delay: float = 10.0      # a longer Retry-After is reported to the user, not waited out
    sleep: Callable[[float], None] = time.sleep   # injectable so tests neither wait nor guess

    def backoff(self, attempt: int) -> float:
        return self.base_delay * 2 ** (attempt - 1)

    def wait_for(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait after a retryable status, or None when the server asks for too long."""
        wanted = retry_after(response)
        if wanted is None:
            return self.backoff(attempt)
        return wanted if wanted <= self.max_delay else None


class StreamFault(Exception):
    """Raised by a line decoder; the backend adds its name, URL and how much had arrived."""


def token_limit_reached(signal: str, had_text: bool) -> str:
    """The server stopped at a token limit (`signal` says how it said so): returns the signal for the
    decoder's `cut` when there was answer text, which the backend then reports as `AnswerCut`. With
    none at all it is a fault: usually a reasoning model that spent the budget thinking."""
    if not had_text:
        raise StreamFault(f"the model hit its token limit ({signal}) before any answer text; "
                          "a reasoning model may have spent it all thinking (raise RAG_MAX_ANSWER_TOKENS)")
    return signal


def repeats_itself(text: str) -> bool:
    """True when `text` ends in one stretch repeated REPEAT_COPIES times back to back, the repeats
    spanning at least REPEAT_COPIES x REPEAT_MIN_CHARS characters: the mark of a looping model.
    Runs of whitespace count as one space and numbered-list counters are ignored, so
    "x. x.\n\nx." and "1. x\n2. x\n3. x" are repeats too. Looks at the last REPEAT_WINDOW characters."""
    tail = _SPACES.sub(" ", _LIST_NUMBER.sub("", text[-REPEAT_WINDOW:]))
    n, least = len(tail), REPEAT_COPIES * REPEAT_MIN_CHARS
    if n < least:
        return False
    # Text that repeats with period p ends in a key of REPEAT_MIN_CHARS characters that also occurs p
    # characters earlier: try those distances, nearest first.
    key = tail[-REPEAT_MIN_CHARS:]
    at = n - REPEAT_MIN_CHARS
    found = tail.rfind(key, 0, n - 1)
    while found >= 0:
        period = at - found
        span = max(REPEAT_COPIES * period, least)
        if span > n:
            return False
        if tail[n - span + period:] == tail[n - span:n - period]:
            return True
        found = tail.rfind(key, 0, found + REPEAT_MIN_CHARS - 1)
    return False


class LineDecoder(Protocol):
    done: bool  # the server said the answer is complete
    cut: str | None  # the server stopped it at a token limit: how it said so (e.g. 'finish_reason "length"')

    def feed(self, line: str) -> str | None:
        """One line of the body in; the text it completes (if any) out. Raises StreamFault."""
        ...

    def flush(self) -> str | None:
        """End of body: the text of anything still pending."""
        ...


def with_scheme(url: str) -> str:
    """'host:port' means http://host:port, as Ollama and most CLIs read it."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 -- parsing it is the check
    except ValueError:
        raise ConfigError(f"{display_url(url)!r} has a bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{display_url(url)!r} is not an http(s) URL")
    return url.rstrip("/")


def make_client(base_url: str, timeout: float, transport: httpx.BaseTransport | None,
                headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=base_url, transport=transport, headers=headers,
                        timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait: Retry-After as seconds or an HTTP date (or OpenAI's -ms)."""
    if ms := response.headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_text(payload: Any) -> str:
    """The human part of an error payload: {"error": {"message": ..}}, {"error": ".."}, {"message": ..}."""
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict):
            for key in ("message", "detail", "error"):
                if isinstance(inner.get(key), str):
                    return inner[key]
    return json.dumps(payload)[:300]


def parse_json_line(text: str, kind: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise StreamFault(f"malformed {kind} line {text[:80]!r}")
    return obj


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class StreamingBackend:
    """The request/stream loop both backends share. Subclasses set the ClassVars and three hooks."""

    name: str                         # plain attribute, as ChatBackend declares it
    chat_path: ClassVar[str]          # relative to the base URL
    auth_hint: ClassVar[str]          # what to check after 401/403
    url_hint: ClassVar[str]           # what to check when the URL looks wrong

    def __init__(self, url: str, model: str, client: httpx.Client, *, timeout: float,
                 retry: RetryPolicy | None = None, max_tokens: int | None = None,
                 deadline: float | None = None) -> None:
        self.url = display_url(url)
        self.model = model
        self._client = client
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self.max_tokens = max_tokens   # asked of the server, and enforced here in characters; None: no cap
        self.deadline = deadline       # seconds from request start to last token; None: none

    def __repr__(self) -> str:  # never shows headers or the key
        return f"{type(self).__name__}(url={self.url!r}, model={self.model!r})"

    def close(self) -> None:
        self._client.close()

    # -- hooks -------------------------------------------------------------------------------
    def _payload(self, messages: list[Message]) -> dict[str, Any]:
        raise NotImplementedError

    def _decoder(self) -> LineDecoder:
        raise NotImplementedError

    def _explain_status(self, status: int, server_says: str, path: str) -> str:
        """One clause saying what an HTTP error means; subclasses refine 400/404."""
        if status in (401, 403):
            return f"HTTP {status}: the server refused the credentials; {self.auth_hint}"
        if status == 404:
            return f"HTTP 404: {self.url}/{path} does not exist; {self.url_hint}"
        if status == 429:
            return "HTTP 429: rate-limited"
        if status >= 500:
            return f"HTTP {status}: server error"
        return f"HTTP {status}"

    # -- the shared loop ---------------------------------------------------------------------
    def stream(self, messages: list[Message]) -> Generator[str, None, None]:  # closable: ends the request
        started = time.monotonic()  # RAG_LLM_DEADLINE counts from here, retries and all
        sent = 0  # characters handed on; after the first, nothing is retried
        pieces: list[str] = []
        tail = ""  # the last REPEAT_WINDOW characters, for the loop check
        with self._request("POST", self.chat_path, self._payload(messages)) as response:
            if "text/html" in response.headers.get("content-type", ""):
                raise self._fail(f"got an HTML page, not a chat stream; {self.url_hint}")
            decoder = self._decoder()
            try:
                for line in response.iter_lines():
                    piece = decoder.feed(line)
                    if not decoder.done:  # the last line of a finished answer is never cut
                        self._check_bounds(started, sent, piece, tail, pieces)
                    if piece:
                        sent += len(piece)
                        pieces.append(piece)
                        tail = (tail + piece)[-REPEAT_WINDOW:]
                        yield piece
                    if decoder.done:  # stop here rather than wait on a server slow to close the body
                        break
                else:
                    piece = decoder.flush()
                    if piece:
                        sent += len(piece)
                        pieces.append(piece)
                        yield piece
            except StreamFault as exc:
                raise self._fail(f"{exc} (after {sent} characters had arrived)") from exc
            except httpx.TimeoutException as exc:
                raise self._fail(f"no data for {self._timeout:g} s (RAG_LLM_TIMEOUT) after {sent} characters "
                                 "had arrived") from exc
            except httpx.HTTPError as exc:
                raise self._fail(f"stream cut after {sent} characters had arrived ({exc})") from exc
        if not decoder.done:
            raise self._fail(f"stream cut after {sent} characters had arrived (ended without its end marker)")
        if sent == 0:
            raise self._fail(f"empty completion: model {self.model!r} returned no text")
        if decoder.cut:
            limit = f"RAG_MAX_ANSWER_TOKENS is {self.max_tokens}" if self.max_tokens else "no RAG_MAX_ANSWER_TOKENS"
            raise self._cut("length", pieces, f"the server stopped it at a token limit ({decoder.cut}; {limit}, "
                                              "or the model's context is full)")

    def _check_bounds(self, started: float, sent: int, piece: str | None, tail: str, pieces: list[str]) -> None:
        """Raise AnswerCut (the text so far kept) when the stream ran past a bound; called on every line."""
        if self.deadline is not None and time.monotonic() - started > self.deadline:
            if not sent:  # nothing to keep: the server never got to the answer
                raise self._fail(f"no answer text within {self.deadline:g} s (RAG_LLM_DEADLINE)")
            raise self._cut("deadline", pieces, f"ran past RAG_LLM_DEADLINE ({self.deadline:g} s)")
        if not piece:
            return
        most = self.max_tokens * CHARS_PER_TOKEN if self.max_tokens is not None else None
        if most is not None and sent + len(piece) > most:
            raise self._cut("max_tokens", pieces, f"reached RAG_MAX_ANSWER_TOKENS ({self.max_tokens} tokens; "
                                                  f"the server went on past {most} characters)")
        # The text so far, not this piece: a model that repeats itself three times and then stops has
        # finished (badly); one that goes on after the third time is looping.
        if repeats_itself(tail):
            raise self._cut("repeat", pieces, "the answer repeated itself")

    def answer(self, request: AnswerRequest) -> Iterator[str]:
        """ChatBackend: the rendered prompt, streamed."""
        return self.stream(request.messages)

    def complete(self, messages: list[Message]) -> str:
        return "".join(self.stream(messages))

    def _get_json(self, path: str) -> Any:
        with self._request("GET", path, None) as response:
            try:
                response.read()
                return response.json()
            except httpx.HTTPError as exc:
                raise self._fail(f"GET {path} failed while reading ({exc})") from exc
            except ValueError as exc:
                raise self._fail(f"GET {path} did not return JSON; {self.url_hint}") from exc

    @contextmanager
    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Iterator[httpx.Response]:
        """Send with retries; yield a 2xx streaming response or raise one LLMError."""
        tries = self._retry.tries
        attempt = 0
        while True:
            attempt += 1
            after = f" (after {attempt} tries)" if attempt > 1 else ""
            try:
                response = self._client.send(self._client.build_request(method, path, json=body), stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, *_DROPPED) as exc:
                detail, wait = self._connect_failure(exc, attempt)
                if wait is None or attempt >= tries:
                    raise self._fail(detail + after) from exc
            except httpx.TimeoutException as exc:
                # The request went out: the server may be working on it, so repeating is not safe.
                raise self._fail(f"no response within {self._timeout:g} s (RAG_LLM_TIMEOUT)") from exc
            except httpx.HTTPError as exc:
                raise self._fail(f"request failed ({type(exc).__name__}: {exc})") from exc
            else:
                if response.is_success:
                    break
                try:
                    response.read()
                except httpx.HTTPError:
                    pass  # the status alone still tells the story
                finally:
                    response.close()
                wait = self._retry.wait_for(attempt, response) if response.status_code in RETRY_STATUSES else None
                if wait is None or attempt >= tries:
                    raise self._status_error(response, path, after)
            # A stale keep-alive connection is routine (wait 0); anything else is worth a warning.
            log.log(logging.INFO if wait == 0 else logging.WARNING, "%s backend at %s: try %d of %d failed; "
                    "retrying in %.1f s", self.name, self.url, attempt, tries, wait)
            self._retry.sleep(wait)
        try:
            yield response
        finally:
            response.close()

    # -- messages ----------------------------------------------------------------------------
    def _only_model(self, names: list[str], none: str, many: str) -> str:
        """The default model is the server's only one; with none or several, the user must pick."""
        if len(names) == 1:
            return names[0]
        if not names:
            raise self._fail(none)
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise self._fail(f"no model configured and {many.format(n=len(names))}; set RAG_LLM_MODEL to one of: {shown}")

    def _fail(self, detail: str) -> LLMError:
        return LLMError(self._message(detail))

    def _cut(self, reason: str, pieces: list[str], why: str) -> AnswerCut:
        text = "".join(pieces)
        return AnswerCut(self._message(f"answer stopped after {len(text)} characters: {why}"), reason=reason,
                         text=text)

    def _message(self, detail: str) -> str:
        message = f"{self.name} backend at {self.url}: {detail}"
        # The key lives only in the client's headers, whose repr httpx already masks as [secure].
        secret = self._client.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return message.replace(secret, "***") if len(secret) >= 8 else message

    def _connect_failure(self, exc: httpx.HTTPError, attempt: int) -> tuple[str, float | None]:
        """(what went wrong, seconds to wait before trying again or None if that cannot help)."""
        if _caused_by(exc, socket.gaierror):  # a wrong host name stays wrong
            return f"cannot resolve the host name ({exc}); {self.url_hint}", None
        if isinstance(exc, _DROPPED):
            # Dropped before a single byte of answer: almost always a pooled keep-alive connection the
            # server had just closed (llama.cpp's server closes it after each stream), so retry at once.
            return f"the connection dropped before the server answered ({exc})", 0.0
        if isinstance(exc, httpx.ConnectTimeout):
            detail = f"no connection within {min(CONNECT_TIMEOUT, self._timeout):g} s; is the server up?"
        else:
            detail = f"cannot connect ({exc}); is the server running? {self.url_hint}"
        return detail, self._retry.backoff(attempt)

    def _status_error(self, response: httpx.Response, path: str, after: str) -> LLMError:
        server_says = self._server_message(response)
        detail = self._explain_status(response.status_code, server_says, path) + after
        wanted = retry_after(response)
        if wanted is not None and wanted > self._retry.max_delay:
            detail += f"; the server asks to wait {wanted:.0f} s before retrying"
        if server_says:
            detail += f" (server says: {server_says})"
        return self._fail(detail)

    def _server_message(self, response: httpx.Response) -> str:
        if "html" in response.headers.get("content-type", ""):
            return "an HTML page"
        try:
            text = error_text(response.json())
        except ValueError:
            text = response.text
        except httpx.StreamError:  # the body could not be read; the status must do
            return ""
        # OpenAI's 401 echoes a masked key ("sk-abc*****xyz"): show none of it.
        return _KEY_LIKE.sub(r"\1***", " ".join(text.split()))[:300]
