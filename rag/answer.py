"""Answer: retrieve → decide (answer, partial, refuse) → prompt → backend → citation check.

`Asker.stream()` yields events so a terminal or a browser can show the sources first, then the
answer as it arrives, then the checked result; `Asker.ask()` returns only the final `Answer`.
An LLM failure still ends in an `Answer` (with `error` set and the sources listed).
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

from rag import prompts
from rag.citations import Checked, check
from rag.decision import Decision, decide, missing_text, unreadable_script
from rag.errors import AnswerCut, LLMError
from rag.llm.base import AnswerRequest, ChatBackend, Message, SourceText
from rag.retrieval import Filters, Hit, Retriever, check_query
from rag.settings import Redactor, Settings, redact
from rag.text import script_of

# Phrasings models use when the sources do not answer; our own wording is rag/templates/refusal.txt.
_REFUSAL_HINTS = re.compile(
    r"(does not cover|do not (cover|contain|mention|provide|answer|say)|does not (contain|mention|say|provide)|"
    r"not (mentioned|covered|found|answered|stated) in|no information|cannot (be )?answer|can't answer|"
    r"insufficient information|not in the (sources|collection))", re.I)


@dataclass
class Source:
    n: int
    paper_id: str
    title: str
    abstract: str
    date: str | None
    score: float
    relevance: float | None   # cosine similarity of the paper's best chunk to the query
    passage: str | None
    meta: dict = field(default_factory=dict)  # authors (names), year, venue, doi, url, ids, keywords

    @classmethod
    def from_hit(cls, n: int, hit: Hit) -> Source:
        return cls(n, hit.paper_id, hit.title, hit.abstract, hit.date, hit.score, hit.dense_score, hit.passage,
                   hit.meta)


@dataclass
class Answer:
    question: str
    query: str                       # the standalone query actually searched
    answer: str                      # checked text: citations that named no source removed
    sources: list[Source]
    refused: bool                    # exactly when decision == "refuse"
    backend: str
    model: str | None = None
    decision: str = "answer"         # "answer", "partial" or "refuse"
    missing: list[str] = field(default_factory=list)   # what the question asks that no source mentions
    evidence: dict = field(default_factory=dict)       # what the decision rested on
    verified: bool = True            # False: an answer that cites no source validly
    cut: str | None = None           # why the answer was stopped part-way (its text is kept)
    citations: list[dict] = field(default_factory=list)       # per-sentence verdicts
    removed_citations: list[int] = field(default_factory=list)
    error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Retrieved:
    sources: list[Source]
    decision: Decision

    @property
    def refused(self) -> bool:
        return self.decision.refused


@dataclass
class Token:
    text: str


@dataclass
class Done:
    answer: Answer


Event = Retrieved | Token | Done


def kept(answer: Answer) -> str:
    """What of an answer the next turn's condensing sees: a failed answer adds nothing."""
    return "" if answer.error else answer.answer


def history_of(turns: Iterable[tuple[str, str]]) -> list[Message]:
    """Chat history for `Asker.stream` from (question, kept answer) turns, the UI's and the
    terminal's alike; a turn with nothing kept (an error, a stopped answer) is left out."""
    return [m for q, a in turns if a for m in (Message("user", q), Message("assistant", a))]


def is_refusal(text: str, refusal: str) -> bool:
    """Every sentence says the sources do not answer: a reply that also answers is no refusal."""
    from rag.text import sentences

    said = [" ".join(s.split()).lower() for s in sentences(text)]
    mark = refusal.lower().rstrip(".")
    return all(mark in s or _REFUSAL_HINTS.search(s) for s in said)


class Asker:
    def __init__(self, settings: Settings, retriever: Retriever | None = None,
                 backend: ChatBackend | None = None):
        self.settings = settings
        self.retriever = retriever or Retriever(settings)
        self._backend = backend
        load = lambda name: prompts.load(name, settings.prompts_dir)  # noqa: E731
        self.templates = {name: load(name) for name in prompts.VARIABLES}
        self.refusal = self.templates["refusal"].text

    @property
    def backend_name(self) -> str:
        return self._backend.name if self._backend else self.settings.llm

    def backend(self) -> ChatBackend:
        if self._backend is None:
            from rag.llm import make_backend

            self._backend = make_backend(self.settings)
        return self._backend

    def close(self) -> None:
        """Release the backend's connections (the retriever may be shared, so it stays open)."""
        if self._backend is not None:
            self._backend.close()

    def decide(self, question: str, sources: list[Source]) -> Decision:
        """One decision for every backend, from what retrieval found (rag.decision)."""
        embedder = self.retriever.embedder
        script = script_of(question)
        if embedder.scripts is not None and script not in embedder.scripts:
            return Decision("refuse", [], {"script": script})
        relevance = max((s.relevance for s in sources if s.relevance is not None), default=None)
        return decide(question, relevance, [f"{s.title}\n{s.abstract}" for s in sources], self.retriever.tokenize,
                      self.retriever.doc_freqs, self.settings.refuse_below, self.settings.coverage_min,
                      self.settings.name_rarity)

    def refusal_text(self, decision: Decision) -> str:
        if "script" in decision.evidence:
            return unreadable_script(str(decision.evidence["script"]), self.retriever.embedder.name)
        return self.refusal

    # --- stages -------------------------------------------------------------------------------
    def standalone_query(self, question: str, history: list[Message]) -> str:
        """A follow-up ("and how fast is it?") is retrieved as a question that stands alone."""
        asked = [m.content for m in history if m.role == "user"]
        if not asked:
            return question
        turns = "\n".join(f"{m.role}: {m.content}" for m in history[-6:])
        prompt = self.templates["condense"].render(history=turns, question=question)
        try:
            rewritten = redact(self.backend().complete([Message("user", prompt)]), self.settings.secrets())
            rewritten = rewritten.strip().strip('"').splitlines()
            if rewritten and rewritten[0].strip():
                return rewritten[0].strip()[: self.settings.max_query_chars]
        except LLMError:
            pass  # no model (extractive), or none reachable: _generate reports the latter
        # Without a model: carry the words of the two previous questions along with the follow-up
        # (the first of a thread usually names its subject; a third turn still needs that name).
        return " ".join([*asked[-2:], question])[-self.settings.max_query_chars:]

    def messages(self, question: str, sources: list[Source]) -> list[Message]:
        blocks = "\n".join(
            self.templates["source"].render(n=s.n, title=prompts.quote_attribute(s.title or "untitled"),
                                            date=prompts.quote_attribute(s.date or "unknown"),
                                            text=prompts.quote_source(s.abstract))
            for s in sources)
        common = {"refusal": self.refusal, "max_sentences": self.settings.max_sentences}
        return [Message("system", self.templates["system"].render(**common)),
                Message("user", self.templates["context"].render(sources=blocks, question=question, **common))]

    # --- the whole path -----------------------------------------------------------------------
    def stream(self, question: str, history: list[Message] | None = None, k: int | None = None,
               filters: Filters | None = None) -> Iterator[Event]:
        started = time.perf_counter()
        question = check_query(question, self.settings)
        query = self.standalone_query(question, history or [])
        hits = self.retriever.search(query, k=k or self.settings.top_k, filters=filters)
        sources = [Source.from_hit(i, h) for i, h in enumerate(hits, start=1)]
        decision = self.decide(query, sources)
        timings = {"retrieve": (time.perf_counter() - started) * 1000}
        yield Retrieved(sources, decision)
        result = Answer(question, query, "", sources, decision.refused, self.backend_name,
                        self.settings.llm_model, decision=decision.outcome, missing=decision.missing,
                        evidence=decision.evidence, timings_ms=timings)
        if decision.refused:
            result.answer = self.refusal_text(decision)
            yield Token(result.answer)
        else:
            text = yield from self._generate(question, sources, result)
            checked = check(text, [f"{s.title}. {s.abstract}" for s in sources])
            self._record(result, text, checked)
            if result.decision == "partial" and result.answer:
                note = self.templates["partial"].render(missing=missing_text(result.missing))
                result.answer = f"{result.answer} {note}".strip()
                yield Token(" " + note)
        result.timings_ms["total"] = (time.perf_counter() - started) * 1000
        # Everything rag does besides waiting for the model (or running the extractive answerer).
        result.timings_ms["overhead"] = (result.timings_ms["total"] - result.timings_ms.get("llm", 0.0)
                                         - result.timings_ms.get("generate", 0.0))
        result.timings_ms = {k: round(v, 2) for k, v in result.timings_ms.items()}
        yield Done(result)

    def _generate(self, question: str, sources: list[Source], result: Answer):
        began = time.perf_counter()
        try:
            # With no model configured this asks the server which one it serves: a server that is
            # down must cost the answer, not the sources already found.
            backend = self.backend()
        except LLMError as e:
            result.error = redact(str(e), self.settings.secrets())
            return ""
        result.model = backend.model
        local = backend.name == "extractive"
        request = AnswerRequest(question, [SourceText(s.n, s.title, s.abstract, s.relevance) for s in sources],
                                [] if local else self.messages(question, sources))
        pieces: list[str] = []
        # A server may echo what it was sent (the key, the Basic header of a URL's password): mask
        # rag's own secrets in everything it hands on, the streamed text included.
        secrets = self.settings.secrets()
        redactor = Redactor(secrets)
        try:
            for piece in backend.answer(request):
                if not pieces:
                    result.timings_ms["first_token"] = (time.perf_counter() - began) * 1000
                pieces.append(piece)
                if shown := redactor.feed(piece):
                    yield Token(shown)
        except AnswerCut as e:
            result.cut = redact(str(e), secrets)
        except LLMError as e:
            result.error = redact(str(e), secrets)
        if rest := redactor.flush():
            yield Token(rest)
        pieces = [redact("".join(pieces), secrets)] if pieces else []
        result.timings_ms["generate" if local else "llm"] = (time.perf_counter() - began) * 1000
        if local and not pieces:  # no sentence shares a word with the question
            pieces.append(self.refusal)
            yield Token(self.refusal)
        return "".join(pieces)

    def _record(self, result: Answer, text: str, checked: Checked) -> None:
        result.answer = checked.text if not result.error or text else ""
        result.citations = [v.as_dict() for v in checked.verdicts]
        result.removed_citations = checked.removed
        if result.error and not text:
            return
        # An answer that cites nothing valid and reads like a refusal is one; one that cites
        # nothing and does not is shown, but as unverified.
        if not checked.cited_numbers and is_refusal(checked.text, self.refusal):
            result.refused, result.decision = True, "refuse"
        result.verified = result.refused or bool(checked.cited_numbers)

    def ask(self, question: str, history: list[Message] | None = None, k: int | None = None,
            filters: Filters | None = None) -> Answer:
        for event in self.stream(question, history, k, filters):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("stream ended without Done")
