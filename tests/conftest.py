"""Shared fixtures: every test gets its own data dir; the seed index is built once a session."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"

# Variables a developer's shell may carry that would change what the tests see.
_LEAKY = ["RAG_DATA_DIR", "RAG_COLLECTION", "RAG_EMBED_MODEL", "RAG_CHROMA_URL", "RAG_LLM", "RAG_LLM_MODEL",
          "OPENAI_BASE_URL", "OPENAI_API_KEY", "OLLAMA_HOST", "RAG_PROMPTS_DIR"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return path


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory) -> Path:
    """A data dir holding the ingested seeds, shared read-only by the tests that only query."""
    from rag.ingest import ingest
    from rag.settings import Settings

    path = tmp_path_factory.mktemp("seed-index")
    ingest([SEEDS], Settings(data_dir=path))
    return path


@pytest.fixture
def seed_settings(seed_dir):
    from rag.settings import Settings

    return Settings(data_dir=seed_dir)


def run_rag(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 300):
    """Run the real `rag` command in a fresh process, as a user would."""
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
