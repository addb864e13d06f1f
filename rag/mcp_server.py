"""`rag mcp`: the collection as a Model Context Protocol server on stdio, read-only.

An assistant (Claude Desktop, Cursor, VS Code, ...) starts `rag mcp` and gets three tools
(search_papers, ask_papers, get_paper) and one resource (rag://status). Nothing here writes to
the index. stdout is the transport: the SDK points fd 1 at stderr while it serves, and logging
goes to stderr, so nothing but protocol reaches the client.
"""
# No `from __future__ import annotations`: the SDK builds each tool's schema from its annotations at
# run time, and those of the tools defined in `build` refer to its `settings`.
import contextlib
import dataclasses
import json
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from rag.errors import RagError
from rag.settings import Mode, Settings

if TYPE_CHECKING:
    from rag.retrieval import Filters, Retriever

INSTRUCTIONS = (
    "A local collection of research-paper abstracts (title, abstract, authors, date, venue) indexed by rag. "
    "Use search_papers to find papers on a topic, ask_papers for a short answer in which every sentence cites "
    "[n] a paper from the collection (or says the collection does not cover the question), and get_paper to "
    "read one paper in full by its paper_id. Read rag://status to see how many papers are indexed. "
    "The server only reads the collection; adding papers is done with `rag ingest` outside the assistant."
)

SEARCH = (
    "Search the paper collection and return the best-matching papers, best first: paper_id, title, full "
    "abstract, date, score, and metadata (authors, year, venue, doi, url where known). Use it to find papers "
    "on a topic, method, dataset or author, or to check whether the collection has anything on it. Queries "
    "work best as keywords or a short phrase (\"LoRA initialization gradient\"). Mode 'hybrid' (default) "
    "fuses meaning-based and keyword ranking; 'bm25' is exact keywords only (names, acronyms); 'dense' is "
    "meaning only. Optional filters keep papers by year range, author name part or venue name part."
)
ASK = (
    "Answer a question from the paper collection only. Returns a short answer whose sentences cite [n] the "
    "numbered sources (also returned, with title and abstract), and `decision`: 'answer'; 'partial' (the "
    "papers are on topic but do not mention what `missing` lists); or 'refuse' (the collection does not "
    "cover the question; `answer` then says so and no claim should be made from it). `verified` is false "
    "when the answer cites no source validly. Prefer it over search_papers when the user asks a question "
    "rather than looking for papers; quote its citations with the source titles."
)
GET = (
    "Return one paper of the collection by its paper_id (as given by search_papers or ask_papers): title, "
    "full abstract, source file, date, number of authors and metadata. Fails if no paper has that id."
)

Text = Annotated[str, Field(description="What to search for: keywords or a short phrase.", min_length=1)]
Question = Annotated[str, Field(description="The question, in English, as the user would ask it.", min_length=1)]
Since = Annotated[int | None, Field(description="Only papers from this year on (inclusive).")]
Until = Annotated[int | None, Field(description="Only papers up to this year (inclusive).")]
Author = Annotated[str | None, Field(description="Only papers with an author whose name contains this "
                                                 "(case-insensitive), e.g. a surname.")]
Venue = Annotated[str | None, Field(description="Only papers whose venue contains this (case-insensitive), "
                                                "e.g. 'ICLR'.")]
PaperId = Annotated[str, Field(description="A paper_id from search_papers or ask_papers.", min_length=1)]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


@contextlib.contextmanager
def _rag_errors() -> Iterator[None]:
    """rag's own errors carry a one-line message meant for the user: hand it over as a tool error
    (anything else is a bug; the SDK reports it as such and logs the traceback on stderr)."""
    try:
        yield
    except RagError as e:
        raise ToolError(str(e)) from None


def _filters(since: int | None, until: int | None, author: str | None, venue: str | None) -> "Filters | None":
    from rag.retrieval import Filters

    return Filters(since, until, author, venue) or None


class _Collection:
    """The one Retriever the tools share, opened at the first call so that `initialize` and
    `tools/list` answer at once. A failed open (nothing ingested yet) is not kept: the next call
    tries again, so an ingest made while the assistant runs is picked up without a restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._retriever: Retriever | None = None
        self._lock = threading.Lock()  # the SDK runs each sync tool call on a worker thread

    def retriever(self) -> "Retriever":
        with self._lock:
            if self._retriever is None:
                from rag.retrieval import Retriever

                self._retriever = Retriever(self.settings)
            return self._retriever

    def close(self) -> None:
        with self._lock:
            if self._retriever is not None:
                self._retriever.close()
                self._retriever = None


def build(settings: Settings, log_level: str = "WARNING") -> MCPServer:
    """The server with its tools and resource; `serve` runs it on stdio, tests may call it in-process."""
    collection = _Collection(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        # A stray print() would otherwise sit in sys.stdout's buffer and reach the wire after the
        # SDK hands fd 1 back at exit.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                yield
            finally:
                collection.close()

    server = MCPServer("rag", instructions=INSTRUCTIONS, log_level=log_level, lifespan=lifespan)

    @server.tool(description=SEARCH, annotations=READ_ONLY)
    def search_papers(
        query: Text,
        k: Annotated[int, Field(ge=1, le=50, description="How many papers to return.")] = settings.top_k,
        mode: Annotated[Mode, Field(description="Ranking: hybrid, dense or bm25.")] = settings.mode,
        since: Since = None, until: Until = None, author: Author = None, venue: Venue = None,
    ) -> dict[str, Any]:
        with _rag_errors():
            hits = collection.retriever().search(query, k=k, mode=mode,
                                                 filters=_filters(since, until, author, venue))
        # `passage` is a piece of `abstract`, which is there in full: leave out the repeat.
        return {"hits": [{key: v for key, v in hit.as_dict().items() if key != "passage"} for hit in hits]}

    @server.tool(description=ASK, annotations=READ_ONLY.model_copy(update={"open_world_hint": None}))
    def ask_papers(
        question: Question,
        k: Annotated[int | None, Field(ge=1, le=20, description="How many papers to answer from "
                                                                 f"(default {settings.top_k}).")] = None,
        since: Since = None, until: Until = None, author: Author = None, venue: Venue = None,
    ) -> dict[str, Any]:
        from rag.answer import Asker

        with _rag_errors():
            asker = Asker(settings, retriever=collection.retriever())
            try:
                answer = asker.ask(question, k=k, filters=_filters(since, until, author, venue)).as_dict()
            finally:
                asker.close()  # its LLM connections; the retriever is shared and stays open
        out = {key: answer[key] for key in ("answer", "decision", "refused", "verified", "missing", "backend")}
        # Set when the LLM backend failed or was stopped part-way: the answer is then incomplete or empty.
        out |= {key: answer[key] for key in ("error", "cut") if answer[key]}
        out["sources"] = [{key: s[key] for key in ("n", "paper_id", "title", "abstract", "meta")}
                          for s in answer["sources"]]
        return out

    @server.tool(description=GET, annotations=READ_ONLY)
    def get_paper(paper_id: PaperId) -> dict[str, Any]:
        with _rag_errors():
            paper = collection.retriever().paper(paper_id.strip())
        if paper is None:
            raise ToolError(f"no paper with id {paper_id.strip()!r} in collection {settings.collection!r}; "
                            "take ids from search_papers or ask_papers")
        return dataclasses.asdict(paper)

    @server.resource("rag://status", name="status", mime_type="application/json",
                     description="The collection: data dir, embedding model, papers, chunks and ingested files.")
    def index_status() -> str:
        from rag.store import status

        try:
            info = status(settings)
        except RagError as e:
            raise ResourceError(str(e)) from None
        del info["titles"]
        return json.dumps(info, ensure_ascii=False, indent=2)

    return server


def serve(settings: Settings, debug: bool = False) -> None:
    """Serve on stdin/stdout until the client closes stdin."""
    build(settings, log_level="DEBUG" if debug else "WARNING").run("stdio")
