"""rag: cited answers from a collection of paper abstracts.

The public API, light to import (everything heavy loads on first use):

    import rag
    rag.ingest(["seeds"])                                   # -> IngestReport
    hits = rag.search("LoRA initialization", k=5)           # -> list[Hit]
    answer = rag.ask("What does LoRA-GA align?")            # -> Answer
    follow = rag.ask("And how fast is it?", history=[("user", "What does LoRA-GA align?"),
                                                     ("assistant", answer.answer)])

Each takes an optional `settings` (rag.settings.Settings); by default it is read from the
environment (RAG_* variables), like the CLI.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.answer import Answer
    from rag.ingestion import IngestReport
    from rag.retrieval import Filters, Hit
    from rag.settings import Settings

__all__ = ["ask", "ingest", "search"]


def _settings(settings: Settings | None) -> Settings:
    from rag.settings import Settings

    return settings or Settings()


def ingest(paths: list[str | Path], settings: Settings | None = None) -> IngestReport:
    from rag.ingestion import ingest as run

    return run([Path(p) for p in paths], _settings(settings))


def search(query: str, k: int | None = None, mode: str | None = None, settings: Settings | None = None,
           filters: Filters | None = None) -> list[Hit]:
    """`filters`: rag.retrieval.Filters(since=2020, until=None, author="Hu", venue="ICLR"), or None."""
    from rag.retrieval import Retriever

    retriever = Retriever(_settings(settings))
    try:
        return retriever.search(query, k=k, mode=mode, filters=filters)
    finally:
        retriever.close()


def ask(question: str, history: list[tuple[str, str]] | None = None, settings: Settings | None = None,
        filters: Filters | None = None) -> Answer:
    """`history`: earlier turns as (role, text) pairs, role "user" or "assistant"; a follow-up is
    condensed into a standalone question before retrieval."""
    from rag.answer import Asker
    from rag.llm.base import Message

    asker = Asker(_settings(settings))
    try:
        return asker.ask(question, history=[Message(role, text) for role, text in history or []], filters=filters)
    finally:
        asker.retriever.close()
