"""httpx.MockTransport helpers shared by the backend tests."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx


class Replay:
    """MockTransport handler: answers queued responses (or raises queued exceptions) in order."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class CutStream(httpx.SyncByteStream):
    """A body that delivers some bytes and then loses the connection."""

    def __init__(self, head: bytes, error: Exception) -> None:
        self.head, self.error = head, error

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise self.error


class Endless(httpx.SyncByteStream):
    """A body that never ends: `head`, then chunk(0), chunk(1), ... with `delay` seconds before each.
    Records how many chunks were read and whether the client closed it."""

    def __init__(self, chunk: Callable[[int], bytes], delay: float = 0.0, head: bytes = b"") -> None:
        self.chunk, self.delay, self.head = chunk, delay, head
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            yield self.head
        while True:
            if self.delay:
                time.sleep(self.delay)
            self.read += 1
            yield self.chunk(self.read - 1)

    def close(self) -> None:
        self.closed = True


def cut(stream: Iterator[str], prefix: str):
    """Run a stream that must be cut short: (the AnswerCut, the pieces handed on before it). Its
    message starts with `prefix` (backend and URL), then says how many characters came."""
    import pytest

    from rag.errors import AnswerCut

    got: list[str] = []
    with pytest.raises(AnswerCut) as info:
        for piece in stream:
            got.append(piece)
    assert str(info.value).startswith(f"{prefix}: answer stopped after {len(''.join(got))} characters")
    assert info.value.text == "".join(got)
    return info.value, got
