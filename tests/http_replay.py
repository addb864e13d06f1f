"""httpx.MockTransport helpers shared by the backend tests."""
from __future__ import annotations

from collections.abc import Iterator

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
