"""Shared fixtures and fakes, as simonw/llm keeps them.

- Every test gets its own data dir (autouse), and embeds with `HashEmbedder`, a deterministic
  model-free fake plugged in through `RAG_EMBEDDER`, the seam any custom embedder uses. It gives
  instant, reproducible vectors: right for parsing, bookkeeping, locking, the CLI, errors and
  the UI's behaviour.
- Tests of retrieval or answer quality ask for `seed_dir`/`seed_settings`/`real_model`: the
  seeds embedded once a session with the real MiniLM, or the real model in their own dir.
- `ScriptedBackend` is a queueable chat backend that records what it was sent.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
TESTS = Path(__file__).resolve().parent

# Variables a developer's shell may carry that would change what the tests see.
_LEAKY = ["RAG_DATA_DIR", "RAG_COLLECTION", "RAG_EMBED_MODEL", "RAG_EMBEDDER", "RAG_CHROMA_URL", "RAG_LLM",
          "RAG_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OLLAMA_HOST", "RAG_PROMPTS_DIR", "RAG_REFUSE_BELOW"]


# --- fakes -----------------------------------------------------------------------------------------------------
class HashEmbedder:
    """Hashed bag of words: each content word (stemmed, stopwords dropped) adds +-1 to one of 4096
    dimensions chosen by its CRC32. Texts sharing words point the same way, so a question still
    finds the paper that uses its words; no torch, no model file, the same vectors in every process.
    Chunks are cut with the real model's tokenizer, so they are the chunks the real model gets."""

    name = "hashed-words-4096 (test fake)"
    fingerprint = "hashed-words-4096-v1"
    max_tokens = 256
    dim = 4096
    scripts = frozenset({"Latin"})

    def __init__(self, settings=None):
        self.settings = settings

    def tokenizer(self):
        from rag.embedding import load_tokenizer, resolve_model
        from rag.settings import DEFAULT_MODEL

        return load_tokenizer(resolve_model(DEFAULT_MODEL))

    def vector(self, text: str):
        import numpy as np

        from rag.text import terms

        vec = np.zeros(self.dim, dtype="float32")
        for word in set(terms(text)):
            h = zlib.crc32(word.encode())
            vec[h % self.dim] += 1.0 if h & 0x80000000 else -1.0
        norm = float(np.linalg.norm(vec))
        vec = vec / norm if norm else np.full(self.dim, self.dim ** -0.5, dtype="float32")
        return vec.astype("float32")

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None):
        import numpy as np

        out = np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self.dim), "float32")
        if progress:
            progress(len(texts))
        return out

    def prepare_queries(self, models_dir: Path) -> None:
        pass  # nothing to export: queries are hashed the same way

    def query_encoder(self, models_dir: Path):
        return _HashQueries(self)


class _HashQueries:
    def __init__(self, embedder: HashEmbedder):
        self.encode = embedder.vector


class StallingEmbedder(HashEmbedder):
    """Embeds the first batch, then stops where a kill finds a long ingest: it creates
    `<data dir>.stalled` (a sibling of the data dir) and waits to be killed."""

    def encode(self, texts, progress=None):
        stall = Path(f"{self.settings.data_dir}.stalled")
        if getattr(self, "_done_one", False):
            stall.touch()
            while True:
                time.sleep(1)
        self._done_one = True
        return super().encode(texts, progress)


class InterruptingEmbedder(HashEmbedder):
    """Embeds the first batch, then raises KeyboardInterrupt as Ctrl-C would on the next."""

    def encode(self, texts, progress=None):
        if getattr(self, "_done_one", False):
            raise KeyboardInterrupt
        self._done_one = True
        return super().encode(texts, progress)


FAKE_EMBEDDER = "conftest:HashEmbedder"
# What a process (a `rag` command, `rag ui`) needs in its environment to use the fake: the
# import path, and this folder importable. Cosines of hashed words run lower than MiniLM's, so
# the refusal threshold is set to match (a far-off question scores ~0, a question in a paper's
# own words 0.2-0.4).
FAKE_ENV = {"RAG_EMBEDDER": FAKE_EMBEDDER, "PYTHONPATH": str(TESTS), "RAG_REFUSE_BELOW": "0.12"}


class ScriptedBackend:
    """A queueable chat backend: returns the replies it was given and records what it was sent."""

    name, url, model = "scripted", "http://scripted.invalid", "scripted-1"
    closed = False

    def __init__(self, *replies: str | Exception):
        self.replies = list(replies)
        self.sent: list = []

    def _next(self, messages):
        self.sent.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def answer(self, request) -> Iterator[str]:
        reply = self._next(request.messages)
        for word in reply.split(" "):
            yield word + " "

    def complete(self, messages) -> str:
        return self._next(messages)

    def close(self) -> None:
        self.closed = True


# --- fixtures --------------------------------------------------------------------------------------------------
def pytest_configure(config):
    """The machine-wide ONNX export cache (settings.model_cache) is one folder for the whole run, set before
    any fixture (session- and module-scoped ones build real-model indexes too) and inherited by xdist's
    workers: one export a run, and never the developer's ~/.cache."""
    if not hasattr(config, "workerinput"):
        os.environ["RAG_MODEL_CACHE"] = tempfile.mkdtemp(prefix="rag-test-model-cache-")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get("RAG_MODEL_CACHE"):
        shutil.rmtree(os.environ.pop("RAG_MODEL_CACHE"), ignore_errors=True)


@pytest.fixture
def model_cache() -> Path:
    return Path(os.environ["RAG_MODEL_CACHE"])


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    return path


@pytest.fixture
def real_model(monkeypatch) -> None:
    """This test embeds with the real MiniLM (its own ingests, and the `rag` commands it runs)."""
    for name in ("RAG_EMBEDDER", "RAG_REFUSE_BELOW"):
        monkeypatch.delenv(name)


def _ingested(path: Path, **settings) -> Path:
    from rag.ingestion import ingest
    from rag.settings import Settings

    ingest([SEEDS], Settings(data_dir=path, **settings))
    return path


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory, worker_id) -> Path:
    """The seeds embedded with the real model, shared read-only by the tests of retrieval and
    answer quality. Query it with `seed_settings`, or `rag` commands under `real_model`.
    Built once per run: pytest-xdist's workers share it (the first builds, the others wait), since
    two builds at once on two cores would take as long as both one after the other."""
    import fcntl

    if worker_id == "master":
        return _ingested(tmp_path_factory.mktemp("seed-index"), embedder=None)
    shared = tmp_path_factory.getbasetemp().parent   # one per run, above every worker's own
    path = shared / "seed-index"
    with open(shared / "seed-index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "seed-index.done").exists():
            shutil.rmtree(path, ignore_errors=True)   # a worker that died half-way
            _ingested(path, embedder=None)
            (shared / "seed-index.done").touch()
    return path


@pytest.fixture
def seed_settings(seed_dir, real_model):
    from rag.settings import Settings

    return Settings(data_dir=seed_dir)


@pytest.fixture(scope="session")
def fake_seed_dir(tmp_path_factory) -> Path:
    """The seeds embedded with `HashEmbedder` (a second or two): for the CLI, the UI and errors."""
    return _ingested(tmp_path_factory.mktemp("fake-seed-index"), embedder=FAKE_EMBEDDER)


@pytest.fixture
def fake_seed_settings(fake_seed_dir):
    from rag.settings import Settings

    return Settings(data_dir=fake_seed_dir)


_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def span_length_problem(qid: str, span: str) -> str | None:
    """Gold spans are 5-15 words; Chinese has no spaces, so 10-80 characters there."""
    span = " ".join(span.split())
    if _CJK.search(span):
        return None if 10 <= len(span) <= 80 else f"{qid}: {len(span)} characters: {span!r}"
    return None if 5 <= len(span.split()) <= 15 else f"{qid}: {len(span.split())} words: {span!r}"


def run_rag(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 300):
    """Run the real `rag` command in a fresh process, as a user would. `env` adds to this process's
    environment (the fake embedder unless the test asked for `real_model`)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], input=input, capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def synthetic_papers(n: int, seed: int = 0) -> list[dict]:
    """Distinct, deterministic abstracts long enough to need two chunks each."""
    import random

    rng = random.Random(seed)
    words = ("model data learning network training graph attention loss sparse vision language robot "
             "policy reward kernel bound theorem protein molecule signal image speech token memory").split()
    return [{"id": f"syn-{i}", "title": f"Synthetic study {i} of {rng.choice(words)} {rng.choice(words)}",
             "abstract": " ".join(rng.choice(words) for _ in range(260)) + f". Identifier {i}."}
            for i in range(n)]
