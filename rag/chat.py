"""Chat in the terminal: one `Asker`, the history condensed exactly as the UI condenses it, and
slash commands. No terminal code here: `rag chat` (cli.py) reads the lines and prints what this
returns, so the commands are tested directly and the terminal loop through a pseudo-terminal."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rag.answer import Answer, Asker, Done, Event, Source, history_of, kept
from rag.cite import CITE_FORMATS, cited_sources, references
from rag.llm.base import ChatBackend
from rag.retrieval import Filters, Retriever
from rag.settings import BACKENDS, Settings

MAX_K = 50  # sources given to the model per answer; more only slows it down
COMMANDS = {  # /help lists them in this order
    "/sources": "the full abstracts of the last answer's sources",
    "/new": "start a new conversation (follow-ups stop referring to earlier turns)",
    "/k N": f"give the next answers N sources (1-{MAX_K})",
    "/llm NAME [MODEL]": f"answer with another backend: {', '.join(BACKENDS)}",
    "/cite [FORMAT]": f"the papers the last answer cites, as {' | '.join(CITE_FORMATS)} (default bibtex)",
    "/help": "this list",
    "/quit": "leave (Ctrl-D does too; Ctrl-C stops an answer, not the chat)",
}


@dataclass
class Reply:
    """What a command gives back: a message, sources to show in full, or the end of the chat.
    `text` may hold untrusted text (references built from abstracts' metadata): print it plain."""
    text: str = ""
    sources: list[Source] | None = None
    error: bool = False
    quit: bool = False


class ChatSession:
    def __init__(self, settings: Settings, filters: Filters | None = None, backend: ChatBackend | None = None):
        self.settings = settings
        self.filters = filters
        self.retriever = Retriever(settings)
        self.asker = Asker(settings, self.retriever, backend)
        self.turns: list[tuple[str, str]] = []   # (question, what of its answer the next turn sees)
        self.last: Answer | None = None
        self.k = settings.top_k

    def ask(self, question: str) -> Iterator[Event]:
        """Stream one answer. It joins the history only once it is done: an answer stopped with
        Ctrl-C (the caller closes this generator) is forgotten, as if never asked."""
        for event in self.asker.stream(question, history_of(self.turns), k=self.k, filters=self.filters):
            if isinstance(event, Done):
                self.last = event.answer
                self.turns.append((question, kept(event.answer)))
            yield event

    def command(self, line: str) -> Reply:
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        handler = {"/sources": self._sources, "/new": self._new, "/k": self._k, "/llm": self._llm,
                   "/cite": self._cite, "/help": self._help, "/quit": self._quit, "/exit": self._quit}.get(name.lower())
        if handler is None:
            return Reply(f"unknown command {name}; /help lists the commands", error=True)
        return handler(arg)

    def close(self) -> None:
        self.asker.close()
        self.retriever.close()

    # --- commands -----------------------------------------------------------------------------
    def _sources(self, _: str) -> Reply:
        if self.last is None:
            return Reply("no answer yet: ask a question first", error=True)
        return Reply(sources=self.last.sources)

    def _new(self, _: str) -> Reply:
        self.turns.clear()
        self.last = None
        return Reply("new conversation: earlier questions no longer shape the search")

    def _k(self, arg: str) -> Reply:
        if not arg.isdigit() or not 1 <= int(arg) <= MAX_K:
            return Reply(f"/k takes a number of sources from 1 to {MAX_K}, e.g. /k 8", error=True)
        self.k = int(arg)
        return Reply(f"the next answers get {self.k} sources")

    def _llm(self, arg: str) -> Reply:
        name, _, model = arg.partition(" ")
        if name not in BACKENDS:
            return Reply(f"/llm takes one of {', '.join(BACKENDS)}, optionally a model name: /llm ollama llama3.2",
                         error=True)
        settings = self.settings.model_copy(update={"llm": name, **({"llm_model": model.strip()} if model else {})})
        self.asker.close()
        self.settings, self.asker = settings, Asker(settings, self.retriever)
        return Reply(f"answering with {name}" + (f" ({model.strip()})" if model else ""))

    def _cite(self, arg: str) -> Reply:
        fmt = arg or CITE_FORMATS[0]
        if fmt not in CITE_FORMATS:
            return Reply(f"/cite takes one of {', '.join(CITE_FORMATS)}", error=True)
        cited = cited_sources(self.last) if self.last else []
        if not cited:
            return Reply("the last answer cites no papers", error=True)
        return Reply(references(cited, fmt))

    def _help(self, _: str) -> Reply:
        width = max(map(len, COMMANDS))
        return Reply("\n".join(f"{name:<{width}}  {what}" for name, what in COMMANDS.items())
                     + "\nAnything else is a question; follow-ups may refer to earlier answers.")

    def _quit(self, _: str) -> Reply:
        return Reply(quit=True)
