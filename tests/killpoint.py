"""Run the `rag` command and SIGKILL it at a named point of a write, as a power cut or the OOM
killer would. The hook lives here, in the tests, not in the product: each point wraps a product
function so that the process dies just before or just after that call.

    python tests/killpoint.py POINT [rag arguments ...]
"""
from __future__ import annotations

import os
import signal
import sys

import rag.ingestion as ingestion
import rag.store as store


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner, name: str, when: str, nth: int = 1) -> None:
    original = getattr(owner, name)
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if when == "before" and calls == nth:
            _die()
        result = original(*args, **kwargs)
        if when == "after" and calls == nth:
            _die()
        return result

    setattr(owner, name, wrapper)


def _vectors_of_old_dropped(settings, name) -> None:
    """Killed inside drop_generation: the old Chroma collection deleted, its directory not yet."""
    from contextlib import suppress

    from chromadb.errors import NotFoundError

    vectors = store.VectorStore(settings, name)
    with suppress(NotFoundError):
        vectors.client().delete_collection(name)
    vectors.close()
    _die()


def _bm25_between_renames() -> None:
    """Killed between the two renames of the BM25 swap: only `bm25.old` is on disk."""
    real = store.os.replace

    def replace(src, dst):
        real(src, dst)
        if str(dst).endswith("bm25.old"):
            _die()

    store.os.replace = replace


POINTS = {
    # --rebuild
    "staged": lambda: _wrap(ingestion, "switch_live", "before"),   # new generation built, not switched
    "switched": lambda: _wrap(ingestion, "switch_live", "after"),  # switched, old generation still there
    "old-half-dropped": lambda: setattr(ingestion, "drop_generation", _vectors_of_old_dropped),
    # plain ingest
    "upserted": lambda: _wrap(store.VectorStore, "upsert", "after", nth=2),  # vectors in, catalog not
    "bm25-build": lambda: _wrap(store.BM25Index, "build", "before"),         # catalog done, BM25 stale
    "bm25-renames": _bm25_between_renames,
}

if __name__ == "__main__":
    point, *args = sys.argv[1:]
    POINTS[point]()
    sys.argv = ["rag", *args]
    from rag.cli import main

    main()
