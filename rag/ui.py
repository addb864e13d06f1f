"""The browser UI (`rag ui`): chat with cited answers, search, and adding abstracts.

Thin widgets over `Asker.stream`, `Retriever.search`, `ingest` and `rag.cite`; nothing here
retrieves or answers on its own. The filter fields become `rag.retrieval.Filters` and the Cite
button `rag.cite.references(cited_sources(answer), format)`, as `rag search/ask --since/--until/
--author/--venue` and `rag ask --cite` build them. The HTML is built by small pure functions
(`render_*`), tested without a browser. Citations `[n]` become links to `#src-n`, the anchor of
source card n: the browser's own fragment navigation brings the card into view and CSS `:target`
highlights it, so no JavaScript is needed.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import html
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported
import gradio as gr  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from rag.answer import Answer, Asker, Done, Retrieved, Source, Token, history_of, kept  # noqa: E402
from rag.citations import CITATION, expand, strip_citations  # noqa: E402
from rag.cite import CITE_FORMATS, CITE_SUFFIXES, cited_sources, references  # noqa: E402
from rag.decision import describe, match_label  # noqa: E402
from rag.errors import ConfigError, IndexBusy, IndexMissing, QueryError, RagError  # noqa: E402
from rag.retrieval import Filters, Hit, Retriever  # noqa: E402
from rag.settings import BACKENDS, MODES, Settings, display_url, redact  # noqa: E402
from rag.sources import FILE_TYPES  # noqa: E402
from rag.text import reference_label, sentences, terms, title_questions  # noqa: E402

REFUSE_BELOW: float = Settings.model_fields["refuse_below"].default  # the shipped floor, for renders without settings

EMPTY_HINT = ("Nothing is indexed yet. Add abstracts in the **Add abstracts** tab "
              "(JSONL/CSV with title and abstract, or text pages), or run `rag ingest` in a terminal.")
BUSY_HINT = "The index is busy: another process is adding papers to it. Try again when it finishes."
MAX_ASKERS = 8  # distinct backend configurations kept warm
# An upload is checked before it is parsed: no abstract needs a line of a megabyte, and a file of
# more lines than this belongs in `rag ingest` on the server, with its progress and its logs.
MAX_UPLOAD_LINES = 200_000
MAX_LINE_BYTES = 1_000_000
REJECTS_SHOWN = 20  # the page lists this many rejected records; the report file has all
FILTERS_HINT = "Empty means no filter. Years are inclusive; author and venue match a part of the name."

CSS = """
#sources { max-height: 700px; overflow-y: auto !important; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px;
            margin: 0 0 8px 0; scroll-margin-top: 12px; }
.src-card:target { outline: 3px solid var(--color-accent); background: var(--color-accent-soft); }
.src-meta { color: var(--body-text-color-subdued); font-size: 0.85em; }
.src-snippet { margin: 4px 0; }
.src-card mark { background: #fde68a; color: inherit; padding: 0 2px; }
#chatbot a.cite, a.cite { color: var(--color-accent); text-decoration: none; font-weight: 600; }
a.cite.weak, .unsupported { color: #b45309; }
.rag-error { color: #b91c1c; font-weight: 600; }
.rag-note { color: var(--body-text-color-subdued); font-size: 0.9em; }
"""


# --- pure rendering -----------------------------------------------------------------------------
# The chat renders markdown: text from abstracts must not become an image (fetched from anywhere),
# a link, code or emphasis. Numeric references are literal text to markdown and to HTML alike, so
# the characters that build those become references; "[" and "]" stay for our own [n] links, which
# cannot turn into markdown links once "(" and "!" are gone. "://" stops bare-URL autolinks.
_MARKDOWN = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_{}()#+!|~"})


def _esc(text: str | None) -> str:
    return html.escape(text or "", quote=True).translate(_MARKDOWN).replace("://", ":&#47;&#47;")


def link_citations(escaped: str, weak: Iterable[int] = ()) -> str:
    """`[1]`, `[1, 3]` in already-escaped text → one link per number to source card `#src-n`."""
    weak = set(weak)

    def links(match) -> str:
        return "".join(f'<a href="#src-{n}" class="cite{" weak" if n in weak else ""}" '
                       f'title="Show source {n}">[{n}]</a>' for n in expand(match.group(1)))

    return CITATION.sub(links, escaped)


NO_MATCH = "No paper that matches the filters was found for this question"


def parse_year(text: str | None, field: str) -> int | None:
    """A year field: empty is no limit; anything but four digits is a QueryError that says so."""
    text = (text or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[1-9][0-9]{3}", text):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise QueryError(f'filter "{field}": "{shown}" is not a year; type four digits, such as 2021, '
                         "or leave it empty for no limit")
    return int(text)


def parse_filters(since: str | None, until: str | None, author: str | None, venue: str | None) -> Filters | None:
    """The filter fields as `rag.retrieval.Filters`, None when all are empty (as the CLI builds them)."""
    start, end = parse_year(since, "since"), parse_year(until, "until")
    return Filters(start, end, (author or "").strip() or None, (venue or "").strip() or None) or None


def describe_filters(filters: Filters) -> str:
    """'since 2020, until 2024, author contains "Hu", venue contains "ICLR"' (not escaped)."""
    return ", ".join(x for x in (f"since {filters.since}" if filters.since else "",
                                 f"until {filters.until}" if filters.until else "",
                                 f'author contains "{filters.author}"' if filters.author else "",
                                 f'venue contains "{filters.venue}"' if filters.venue else "") if x)


def _filter_line(filters: Filters | None) -> str:
    return f'<p class="rag-note filtered">Filters: {_esc(describe_filters(filters))}</p>' if filters else ""


def filters_summary(since: str, until: str, author: str, venue: str) -> tuple:
    """As the fields are typed: the accordion's label (what is on, seen while it is closed) and the
    note inside it (the hint, or why a year is not one)."""
    try:
        filters = parse_filters(since, until, author, venue)
    except QueryError as e:
        return gr.update(label="Filters (fix the error below)"), render_error(str(e))
    label = f"Filters: {describe_filters(filters)}" if filters else "Filters"
    return gr.update(label=label), f'<p class="rag-note">{FILTERS_HINT}</p>'


def render_streaming(text: str) -> str:
    return link_citations(_esc(text)) + " ▍"


def _why(verdict: dict) -> str:
    if not verdict["cited"]:
        return "This sentence cites no source."
    return (f"Weak support: only {verdict['support']:.0%} of its content words appear in the cited "
            "abstract.")


def mark_unsupported(text: str, citations: list[dict]) -> str:
    """Escape the answer, link its citations, and put ⚠ after each sentence the check flagged."""
    flagged = {v["sentence"]: v for v in citations if not v["supported"]}
    pieces, cursor = [], 0
    for sentence in sentences(text):
        at = text.find(sentence, cursor)
        if at < 0:
            continue
        end = at + len(sentence)
        verdict = flagged.get(strip_citations(sentence))
        pieces.append(link_citations(_esc(text[cursor:end]), verdict["cited"] if verdict else ()))
        if verdict:
            pieces.append(f' <span class="unsupported" title="{_esc(_why(verdict))}">⚠</span>')
        cursor = end
    pieces.append(link_citations(_esc(text[cursor:])))
    return "".join(pieces)


def render_answer(answer: Answer, refusal: str, filters: Filters | None = None) -> str:
    """The final chat message: refusal, error, or the checked answer with its warnings. `refusal`
    is the wording of the prompts in use (`Asker.refusal`), so an override is shown alone. With
    `filters`, the message says what they kept out; when they kept out everything, it says that
    rather than that the collection does not cover the question."""
    filtered = (f'\n\n<span class="rag-note">Filters: {_esc(describe_filters(filters))} (only papers that match '
                "them were searched).</span>" if filters else "")
    if answer.error:
        partial = mark_unsupported(answer.answer, answer.citations) + "\n\n" if answer.answer else ""
        return (f'{partial}<span class="rag-error">⚠ Error: {_esc(answer.error)}</span>\n\n'
                f'<span class="rag-note">The sources found are listed beside the chat.</span>')
    if answer.refused and filters and not answer.sources:
        return (f"**{_esc(NO_MATCH)} ({_esc(describe_filters(filters))}).**\n\n<span class=\"rag-note\">"
                "Widen or clear them under Filters and ask again.</span>")
    if answer.refused:
        said = answer.answer.strip()
        extra = f" {_esc(said)}" if said and said != refusal else ""
        return (f"**{_esc(refusal)}**{extra}\n\n<span class=\"rag-note\">The nearest papers are listed beside "
                "the chat; none of them answers the question.</span>" + filtered)
    body = mark_unsupported(answer.answer, answer.citations)
    notes = []
    notes.append(describe(answer.decision, answer.evidence, answer.missing))
    if not answer.verified:
        notes.append("⚠ Unverified: the answer cites none of the sources.")
    if answer.cut:
        notes.append(f"⚠ Answer cut short: {answer.cut}")
    weak = [v for v in answer.citations if not v["supported"]]
    if weak:
        notes.append(f"⚠ {len(weak)} sentence{'s' if len(weak) > 1 else ''} not clearly supported by the "
                     "cited abstract (hover ⚠ for why).")
    if answer.removed_citations:
        numbers = ", ".join(str(n) for n in answer.removed_citations)
        notes.append(f"⚠ Removed citation{'s' if len(answer.removed_citations) > 1 else ''} {numbers}: "
                     "no such source was retrieved.")
    return body + "".join(f'\n\n<span class="rag-note unsupported">{_esc(n)}</span>' for n in notes) + filtered


def supporting_sentences(abstract_sentences: list[str], claims: list[str]) -> set[int]:
    """Index of the abstract sentence that best covers each claim (most of its words in the claim)."""
    chosen: set[int] = set()
    words = [set(terms(s)) for s in abstract_sentences]
    for claim in claims:
        said = set(terms(claim))
        scores = [len(said & w) / len(w) if w else 0.0 for w in words]
        if scores and max(scores) >= 0.5:
            chosen.add(scores.index(max(scores)))
    return chosen


def _card(anchor: str, label: str, title: str, meta: str, snippet: str, abstract: str) -> str:
    return (f'<div class="src-card" id="{anchor}"><div><b>{label}</b> <b>{title or "<i>untitled</i>"}</b></div>'
            f'<div class="src-meta">{meta}</div><p class="src-snippet">{snippet}</p>'
            f'<details><summary>Full abstract</summary><p>{abstract}</p></details></div>')


def reference_html(meta: dict, date: str | None) -> str:
    """The reference label, escaped, linked to the paper's DOI (or else its URL): the only links on
    the page that come from the data, and only ones rag builds (https://doi.org/…, or an http(s) URL)."""
    from urllib.parse import quote

    label = _esc(reference_label(meta, date))
    href = f"https://doi.org/{quote(meta['doi'], safe='/:;()._-')}" if meta.get("doi") else meta.get("url")
    if not label or not href:
        return label
    return (f'<a class="src-link" href="{html.escape(href, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer nofollow">{label}</a>')


def _plain_snippet(passage: str | None, abstract: str, limit: int = 320) -> str:
    text = (passage or abstract).split("\n", 1)[-1].strip() if passage else abstract
    return _esc(text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …")


def render_source(source: Source, claims: list[str], floor: float = REFUSE_BELOW) -> str:
    """A source card: the sentences the answer drew on highlighted, the full abstract on expand."""
    parts = sentences(source.abstract)
    marked = supporting_sentences(parts, claims)
    abstract = " ".join(f"<mark>{_esc(s)}</mark>" if i in marked else _esc(s) for i, s in enumerate(parts))
    snippet = " … ".join(f"<mark>{_esc(parts[i])}</mark>" for i in sorted(marked))
    meta = " · ".join(x for x in (reference_html(source.meta, source.date), match_label(source.relevance, floor)) if x)
    return _card(f"src-{source.n}", f"[{source.n}]", _esc(source.title), meta,
                 snippet or _plain_snippet(source.passage, source.abstract), abstract)


def render_sources(sources: list[Source], citations: list[dict] | None = None, refused: bool = False,
                   filters: Filters | None = None, floor: float = REFUSE_BELOW) -> str:
    if not sources:
        if filters:
            return f'<p class="rag-note">{_esc(NO_MATCH)} ({_esc(describe_filters(filters))}).</p>'
        return '<p class="rag-note">Sources appear here when you ask a question.</p>'
    claims: dict[int, list[str]] = {}
    for verdict in citations or []:
        for n in verdict["cited"]:
            claims.setdefault(n, []).append(verdict["sentence"])
    head = ("Nearest papers (none of them answers the question)" if refused else "Sources")
    return (f"<h3>{head}</h3>" + _filter_line(filters)
            + "".join(render_source(s, claims.get(s.n, []), floor) for s in sources))


def render_hits(hits: list[Hit], mode: str, filters: Filters | None = None, floor: float = REFUSE_BELOW) -> str:
    if not hits:
        return (f'<p class="rag-note">{_esc(NO_MATCH)} ({_esc(describe_filters(filters))}).</p>' if filters
                else '<p class="rag-note">No matching papers.</p>')
    cards = [_card(f"hit-{h.rank}", f"{h.rank}.", _esc(h.title),
                   " · ".join(x for x in (reference_html(h.meta, h.date), match_label(h.dense_score, floor)) if x),
                   _plain_snippet(h.passage, h.abstract), _esc(h.abstract)) for h in hits]
    return f'{_filter_line(filters)}<div class="hits">{"".join(cards)}</div>'


def render_report(report, name: str, saved_as: str | None = None) -> str:
    """An IngestReport as a summary of bounded size: the counts and the first rejected records,
    each with its reason; `saved_as` names the file on the server that lists them all."""
    counts = (f"{_esc(name)}: <b>{report.added} added</b> · {report.updated} updated · {report.unchanged} unchanged · "
              f"{report.duplicates} duplicates merged · {len(report.rejected)} rejected")
    rejected = "".join(f"<li>{_esc(Path(r.source).name)} {_esc(r.location)}: {_esc(r.reason[:200])}</li>"
                       for r in report.rejected[:REJECTS_SHOWN])
    if len(report.rejected) > REJECTS_SHOWN:
        rejected += f"<li>… and {len(report.rejected) - REJECTS_SHOWN:,} more</li>"
    saved = f"<p>The full report is on the server in {_esc(saved_as)}.</p>" if saved_as and report.rejected else ""
    return (f'<div class="ingest-report"><p>{counts}</p><p>The collection now holds {report.papers_total} '
            f"papers ({report.chunks_total} chunks). Ask about them in the Chat tab.</p>"
            + (f"<p>Rejected:</p><ul>{rejected}</ul>" if rejected else "") + saved + "</div>")


def check_upload(path: Path, max_mb: int) -> str | None:
    """Why an upload is refused before parsing (too large, too many lines, a line too long), or None."""
    size = path.stat().st_size
    if size > max_mb * 1e6:
        return f"the file is {size / 1e6:,.1f} MB; uploads are limited to {max_mb} MB (RAG_MAX_UPLOAD_MB)"
    lines = 0
    with open(path, "rb") as f:
        while line := f.readline(MAX_LINE_BYTES + 1):
            if len(line) > MAX_LINE_BYTES:
                return f"line {lines + 1} is longer than {MAX_LINE_BYTES // 1_000_000} MB; no abstract needs that"
            if line.endswith(b"\n"):
                lines += 1
            if lines > MAX_UPLOAD_LINES:
                return (f"the file has more than {MAX_UPLOAD_LINES:,} lines; ingest a file that large on the "
                        "server with `rag ingest`")
    return None


def discard_upload(path: Path) -> None:
    """Gradio leaves each upload in its temp dir for good: remove it (and its folder) once done."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # Gradio's per-upload folder, if nothing else is in it


def save_report(report, name: str, data_dir: Path) -> str:
    """Every rejected record of an upload in a JSON file under the data dir; returns its relative name."""
    folder = data_dir / "uploads" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(name).stem}.json"
    target.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    return str(target.relative_to(data_dir))


def render_error(message: str) -> str:
    return f'<p class="rag-error">⚠ {_esc(message)}</p>'


def no_references() -> tuple:
    """The Cite outputs emptied: a new question or a new chat makes the references shown stale."""
    return "", gr.update(value=None, visible=False), gr.update(value=None, visible=False)


def _note(message: str) -> str:
    return f'<p class="rag-note">{_esc(message)}</p>'


def error_text(error: RagError) -> str:
    if isinstance(error, IndexMissing):
        return EMPTY_HINT
    if isinstance(error, IndexBusy):
        return BUSY_HINT
    return f"Error: {error}"


def example_question(title: str) -> str | None:
    """'LoRA-GA: Low-Rank …' → 'What does LoRA-GA propose?'; other short titles → 'What is "…" about?'."""
    forms = dict(title_questions(title))
    return forms.get("propose") or forms.get("about")


def render_status(info: dict, backend: str) -> str:
    if not info["papers"]:
        return EMPTY_HINT
    return (f"**{info['papers']:,} papers** · {info['chunks']:,} chunks · embedding model `{info['model']}` "
            f"· default answer backend `{backend}`")


# --- the app: shared retriever, one Asker per backend configuration, per-tab chat state ----------
def collection_status(settings: Settings, n_examples: int = 3) -> dict:
    """Papers, chunks, model and candidate example questions from a few titles (the catalog alone)."""
    from rag.store import status

    info = status(settings, titles=n_examples * 4)
    candidates = [q for q in map(example_question, info["titles"]) if q]
    return {"papers": info["papers"], "chunks": info["chunks"], "model": info["embed_model"],
            "candidates": candidates}


def keep_upload(path: Path, data_dir: Path) -> tuple[Path, bool]:
    """Uploads arrive in Gradio's temp dir, which is cleaned away: ingest a copy kept under the data
    dir with the name the user gave it, so the catalog names a file that stays. Returns the copy and
    whether it is new (False: the same bytes were uploaded before, and that copy is reused)."""
    folder = data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists():
        if target.read_bytes() == path.read_bytes():
            return target, False
        target, n = folder / f"{path.stem}-{n}{path.suffix}", n + 1
    shutil.copyfile(path, target)
    return target, True


class App:
    def __init__(self, settings: Settings, lock_llm: bool = False):
        self.settings = settings
        # Served beyond this machine, a page that lets any visitor aim the server at a URL of their
        # choosing is a request-forgery hole: locked, only the server's own backend is used.
        self.lock_llm = lock_llm
        self._lock = threading.Lock()
        self._retriever: Retriever | None = None
        self._askers: OrderedDict[tuple, Asker] = OrderedDict()
        self._cite_dir: Path | None = None

    def retriever(self) -> Retriever:
        """Opened once, on first use (IndexMissing until something is indexed); it notices ingests."""
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.settings)
            return self._retriever

    def request_settings(self, backend: str, model: str, base_url: str, host: str, api_key: str,
                         top_k: float) -> Settings:
        """This request's copy of the settings. The server's own API key is only ever sent to the
        server's own base URL: a user who points the UI elsewhere must bring their own key.
        With the backend locked, only top-k comes from the page."""
        base = self.settings
        k = max(1, min(int(top_k or base.top_k), 50))
        if self.lock_llm:
            return base.model_copy(update={"top_k": k})
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        def url(typed: str | None, server: str) -> str:
            # The page shows the server's URL without its credentials: sent back as shown, it means
            # the server's own URL, credentials and all.
            typed = (typed or "").strip().rstrip("/")
            return server if not typed or typed == display_url(server).rstrip("/") else typed

        update: dict = {"llm": backend, "llm_model": (model or "").strip() or base.llm_model, "top_k": k,
                        "openai_base_url": url(base_url, base.openai_base_url),
                        "ollama_host": url(host, base.ollama_host)}
        if (api_key or "").strip():
            update["openai_api_key"] = SecretStr(api_key.strip())
        elif update["openai_base_url"] != base.openai_base_url.rstrip("/"):
            update["openai_api_key"] = None
        return base.model_copy(update=update)

    def asker(self, settings: Settings) -> Asker:
        key = (settings.llm,) if settings.llm == "extractive" else (
            settings.llm, settings.llm_model, settings.openai_base_url, settings.ollama_host,
            settings.openai_api_key.get_secret_value() if settings.openai_api_key else None)
        retriever = self.retriever()
        with self._lock:
            if key not in self._askers:
                self._askers[key] = Asker(settings, retriever=retriever)
                while len(self._askers) > MAX_ASKERS:
                    self._askers.popitem(last=False)[1].close()
            self._askers.move_to_end(key)
            return self._askers[key]

    # --- event handlers -------------------------------------------------------------------------
    def chat(self, question: str, turns: list, backend: str, model: str, base_url: str, host: str,
             api_key: str, top_k: float, since: str = "", until: str = "", author: str = "", venue: str = ""):
        """Stream one answer. `turns` (per-tab gr.State): (question, answer for history, shown).
        Yields the chat, the sources, the turns, the question box and the last Answer (for Cite:
        None from the moment a question is asked until its answer is done)."""
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        history = history_of((q, a) for q, a, _ in turns)
        sources_html = gr.skip()

        def show(message: str, done: list | None = None, box: str = "", answer: Answer | dict | None = None):
            shown = [*turns, (question, "", message)] if done is None else done
            chat = [{"role": r, "content": c} for q, _, m in shown for r, c in (("user", _esc(q)), ("assistant", m))]
            return chat, sources_html, shown, box, answer

        try:
            filters = parse_filters(since, until, author, venue)
        except QueryError as e:  # nothing asked: the question stays in its box, the last answer stays citable
            yield show(f'<span class="rag-error">⚠ {_esc(str(e))}</span>', box=question, answer=gr.skip())
            return
        yield show("_Searching the collection…_ ▍")
        try:
            settings = self.request_settings(backend, model, base_url, host, api_key, top_k)
            text = ""
            asker = self.asker(settings)
            for event in asker.stream(question, history=history, k=settings.top_k, filters=filters):
                if isinstance(event, Retrieved):
                    sources_html = render_sources(event.sources, refused=event.refused, filters=filters,
                                                  floor=settings.refuse_below)
                    yield show(f"_Found {len(event.sources)} papers; answering…_ ▍")
                elif isinstance(event, Token):
                    text += event.text
                    yield show(render_streaming(text))
                elif isinstance(event, Done):
                    answer = event.answer
                    sources_html = render_sources(answer.sources, answer.citations, answer.refused, filters,
                                                  settings.refuse_below)
                    yield show("", [*turns, (question, kept(answer), render_answer(answer, asker.refusal, filters))],
                               answer=answer)
        except RagError as e:
            typed = {api_key.strip()} if (api_key or "").strip() else set()
            message = redact(error_text(e), self.settings.secrets() | typed)
            yield show(f'<span class="rag-error">⚠ {_esc(message)}</span>'
                       if not isinstance(e, IndexMissing) else message)

    def search(self, query: str, mode: str, k: float, since: str = "", until: str = "", author: str = "",
               venue: str = "") -> str:
        if not (query or "").strip():
            return '<p class="rag-note">Type a query.</p>'
        try:
            filters = parse_filters(since, until, author, venue)
            mode = mode if mode in MODES else self.settings.mode
            hits = self.retriever().search(query, k=max(1, min(int(k or 10), 50)), mode=mode, filters=filters)
            return render_hits(hits, mode, filters, self.settings.refuse_below)
        except RagError as e:
            return render_error(error_text(e)) if not isinstance(e, IndexMissing) else f"<p>{EMPTY_HINT}</p>"

    def cite(self, answer: Answer | None, fmt: str) -> tuple:
        """The papers the last answer cites as references, built as `rag ask --cite FORMAT` builds
        them: a note, the text for the code box and a file to download (both hidden when none)."""
        hidden = gr.update(value=None, visible=False)
        if fmt not in CITE_FORMATS:
            return render_error(f"choose a format: {', '.join(CITE_FORMATS)}"), hidden, hidden
        if answer is None:
            return _note("No answer to cite yet: ask a question first."), hidden, hidden
        cited = cited_sources(answer)
        if not cited:
            why = ("the answer was a refusal, so it cites no paper" if answer.refused
                   else "the answer cites none of the sources")
            return _note(f"Nothing to cite: {why}."), hidden, hidden
        text = references(cited, fmt)
        path = self._reference_file(text, fmt)
        many = "s" if len(cited) > 1 else ""
        return (_note(f"{len(cited)} cited paper{many} as {fmt}: copy from the box, or download {path.name}."),
                gr.update(value=text, visible=True, label=f"References ({fmt})"),
                gr.update(value=str(path), visible=True, label=f"Download {path.name}"))

    def _reference_file(self, text: str, fmt: str) -> Path:
        """The references as a file with the suffix reference managers expect, in a folder of this
        app's own under the system temp dir (where Gradio serves files from); one file per content."""
        with self._lock:
            if self._cite_dir is None:
                self._cite_dir = Path(tempfile.mkdtemp(prefix="rag-cite-"))
        folder = self._cite_dir / hashlib.sha256(f"{fmt}\n{text}".encode()).hexdigest()[:16]
        folder.mkdir(exist_ok=True)
        path = folder / f"references{CITE_SUFFIXES.get(fmt, '.txt')}"
        if not path.exists():  # written whole, then renamed: a click at the same moment never gets half
            partial = folder / f".{threading.get_ident()}.part"
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)
        return path

    def add(self, path: str | None, progress=gr.Progress()):  # noqa: B008 (gradio's idiom)
        if not path:
            return render_error("Choose a file first."), None, *self.status()
        upload = Path(path)
        try:
            return self._add(upload, progress), None, *self.status()
        finally:
            discard_upload(upload)

    def _add(self, upload: Path, progress) -> str:
        from rag.ingestion import ingest

        if why := check_upload(upload, self.settings.max_upload_mb):
            return render_error(f"{upload.name}: {why}; nothing was changed")
        progress(0, desc="Reading the file and loading the embedding model")

        def step(done: int, total: int) -> None:
            progress((done, total), desc="Embedding chunks", unit="chunks")

        kept, new = keep_upload(upload, self.settings.data_dir)
        try:
            # Behind an ingest already running (another upload, `rag ingest`), this one waits its turn.
            report = ingest([kept], self.settings, progress=step,
                            on_wait=lambda: progress(0, desc="Waiting for the ingest already running"))
        except RagError as e:
            if new:  # nothing from it was indexed; a copy kept by an earlier upload stays with its papers
                kept.unlink(missing_ok=True)
            return render_error(f"{upload.name}: {e}")
        saved = save_report(report, upload.name, self.settings.data_dir) if report.rejected else None
        return render_report(report, upload.name, saved)

    def examples(self, candidates: list[str], n: int = 3) -> list[str]:
        """The first candidates that rag would answer, not refuse or answer in part: an example
        button must not lead to "the collection does not cover this question"."""
        if not candidates:
            return []
        try:
            asker = self.asker(self.settings)
            chosen = []
            for question in candidates:
                hits = asker.retriever.search(question)
                if asker.decide(question, [Source.from_hit(i, h) for i, h in enumerate(hits, 1)]).outcome == "answer":
                    chosen.append(question)
                if len(chosen) == n:
                    break
            return chosen
        except RagError:
            return []  # busy or gone: no examples this time, the header says why

    def status(self) -> tuple:
        """The header line and the example-question buttons, refreshed on page load and after ingest."""
        info = collection_status(self.settings)
        examples = self.examples(info["candidates"]) if info["papers"] else []
        buttons = [gr.update(value=q, visible=True) for q in examples]
        buttons += [gr.update(visible=False)] * (3 - len(buttons))
        return render_status(info, self.settings.llm), *buttons


def build(settings: Settings, concurrency: int = 2, lock_llm: bool = False, uploads: bool = True) -> gr.Blocks:
    app = App(settings, lock_llm)
    editable = not lock_llm
    key_hint = "set on the server (OPENAI_API_KEY)" if settings.openai_api_key else "none"
    with gr.Blocks(analytics_enabled=False, title="rag: ask your paper abstracts") as demo:
        gr.Markdown("## rag: ask your paper abstracts\nEvery claim cites `[n]` a paper in the collection; "
                    "click a citation to see its source.")
        status = gr.Markdown(EMPTY_HINT, elem_id="status")
        turns = gr.State([])
        answered = gr.State(None)  # the last Answer in this tab, for Cite
        with gr.Accordion("Filters", open=False, elem_id="filters") as filters_box:
            with gr.Row():
                since = gr.Textbox(label="Since year", placeholder="e.g. 2020", elem_id="since", max_lines=1)
                until = gr.Textbox(label="Until year", placeholder="e.g. 2024", elem_id="until", max_lines=1)
                author = gr.Textbox(label="Author", placeholder="part of a name", elem_id="author", max_lines=1)
                venue = gr.Textbox(label="Venue", placeholder="part of a journal or conference",
                                   elem_id="venue", max_lines=1)
            filters_note = gr.HTML(f'<p class="rag-note">{FILTERS_HINT}</p>', elem_id="filters-note")
        with gr.Tab("Chat", id="chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(height=520, elem_id="chatbot", show_label=False, buttons=["copy"],
                                         placeholder="Ask a question about the papers in the collection.")
                    with gr.Row():
                        question = gr.Textbox(placeholder="e.g. What does LoRA-GA align at the first step?",
                                              show_label=False, scale=5, elem_id="question", autofocus=True)
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                    with gr.Row():
                        examples = [gr.Button(visible=False, size="sm", elem_classes="example") for _ in range(3)]
                    new_chat = gr.Button("New chat", size="sm", elem_id="new-chat")
                    with gr.Row(equal_height=True):
                        cite_format = gr.Radio(list(CITE_FORMATS), value=CITE_FORMATS[0], scale=4,
                                               label="Cite the papers the answer cites, as", elem_id="cite-format")
                        cite = gr.Button("Cite", size="sm", scale=1, elem_id="cite")
                    cite_note = gr.HTML(elem_id="cite-note")
                    # Copy only: the code box's own download would save "file.txt"; the button names the file.
                    cited_refs = gr.Code(visible=False, buttons=["copy"], lines=4, max_lines=20, wrap_lines=True,
                                         show_line_numbers=False, elem_id="references")
                    cite_file = gr.DownloadButton(visible=False, size="sm", elem_id="cite-download")
                with gr.Column(scale=2):
                    sources = gr.HTML(render_sources([]), elem_id="sources")
            with gr.Accordion("Settings (this tab only)", open=False):
                if lock_llm:
                    gr.Markdown("The answer backend is fixed by the server (`rag ui --lock-llm`).",
                                elem_classes="rag-note", elem_id="llm-locked")
                backend = gr.Radio(list(BACKENDS), value=settings.llm, label="Answer backend", elem_id="backend",
                                   interactive=editable)
                model = gr.Textbox(settings.llm_model or "", label="Model name (openai / ollama)", elem_id="model",
                                   interactive=editable)
                base_url = gr.Textbox(display_url(settings.openai_base_url), label="OpenAI-compatible base URL",
                                      elem_id="base-url",
                                      interactive=editable, visible=editable)
                host = gr.Textbox(display_url(settings.ollama_host), label="Ollama host", elem_id="ollama-host",
                                  interactive=editable, visible=editable)
                api_key = gr.Textbox("", type="password", label="API key (openai)", elem_id="api-key",
                                     placeholder=f"empty: {key_hint}; used for your requests only, never stored",
                                     interactive=editable, visible=editable)
                top_k = gr.Slider(1, 20, value=min(settings.top_k, 20), step=1, label="Sources per answer (top-k)")
        with gr.Tab("Search", id="search"):
            with gr.Row():
                query = gr.Textbox(placeholder="e.g. LoRA initialization gradient", show_label=False, scale=5,
                                   elem_id="search-query")
                go = gr.Button("Search", variant="primary", scale=1, elem_id="search-go")
            with gr.Row():
                mode = gr.Radio(list(MODES), value=settings.mode, label="Ranking", elem_id="mode")
                k = gr.Slider(1, 50, value=10, step=1, label="Papers")
            hits = gr.HTML(elem_id="hits")
        if uploads:
            with gr.Tab("Add abstracts", id="add"):
                gr.Markdown("BibTeX, RIS or CSL-JSON from your reference manager; PubMed, OpenAlex or Semantic "
                            "Scholar exports; JSONL or CSV with `title` and `abstract` fields; a BEIR "
                            f"`corpus.jsonl`; or text pages like `seeds/`; up to {settings.max_upload_mb} MB. "
                            "Papers already indexed are skipped; a bad file changes nothing.")
                upload = gr.File(file_types=FILE_TYPES, label="File of abstracts", elem_id="upload")
                add = gr.Button("Add to the collection", variant="primary", elem_id="add-go")
                report = gr.HTML(elem_id="ingest-report")
        gr.Markdown(f"Answers are generated {concurrency} at a time (`rag ui --concurrency`); further questions "
                    "wait in a queue. With the extractive backend nothing leaves this machine.",
                    elem_classes="rag-note")

        config = [backend, model, base_url, host, api_key, top_k]
        filter_fields = [since, until, author, venue]
        chat_out = [chatbot, sources, turns, question, answered]
        cite_out = [cite_note, cited_refs, cite_file]
        asking = [(ask.click, question), (question.submit, question), *((b.click, b) for b in examples)]
        answering = [trigger(app.chat, [source, turns, *config, *filter_fields], chat_out, concurrency_id="answer",
                             api_visibility="private") for trigger, source in asking]
        for trigger, _ in asking:  # the references shown belong to the answer before: take them away
            trigger(no_references, None, cite_out, queue=False, api_visibility="private")
        for clear in (new_chat.click, chatbot.clear):  # the chatbot's own 🗑 button clears the history too
            clear(lambda: ([], render_sources([]), [], "", None, *no_references()), None, [*chat_out, *cite_out],
                  cancels=answering, queue=False)
        cite.click(app.cite, [answered, cite_format], cite_out, queue=False, api_visibility="private")
        for field in filter_fields:
            field.change(filters_summary, filter_fields, [filters_box, filters_note], queue=False,
                         show_progress="hidden", api_visibility="private")
        for trigger in (go.click, query.submit):
            trigger(app.search, [query, mode, k, *filter_fields], hits)
        if uploads:
            add.click(app.add, upload, [report, upload, status, *examples], concurrency_limit=1,
                      api_visibility="private")
        demo.load(app.status, None, [status, *examples])
    return demo


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: assume it is reachable from elsewhere


def check_listen(host: str, port: int) -> None:
    """Fail with one line before Gradio does: its own message for a busy port names its internals
    (GRADIO_SERVER_PORT, launch()) and a bad host comes out as a uvicorn log line."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r} is not an address this machine can listen on ({e.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            hint = "another program uses it; pick another --port" if e.errno == errno.EADDRINUSE else "check --host"
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror} ({hint})") from None


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 2,
          lock_llm: bool = False, uploads: bool = True) -> tuple[gr.Blocks, str]:
    """Start the app in the background: (the Blocks, to close; its URL)."""
    check_listen(host, port)
    demo = build(settings, concurrency, lock_llm, uploads)
    demo.queue(default_concurrency_limit=concurrency)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],  # system fonts: no downloads
                              font_mono=["ui-monospace", "monospace"])
    # Gradio's upload route takes files from anyone who reaches the port: without uploads, none at all.
    max_file_size = f"{settings.max_upload_mb}mb" if uploads else 0
    _, url, _ = demo.launch(server_name=host, server_port=port, share=False, quiet=True, show_error=False,
                            prevent_thread_lock=True, theme=theme, css=CSS, run_history=False,
                            footer_links=["api", "settings"], max_file_size=max_file_size)
    return demo, url


def launch(settings: Settings, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 2,
           lock_llm: bool | None = None, uploads: bool | None = None) -> None:
    loopback = is_loopback(host)
    lock_llm = not loopback if lock_llm is None else lock_llm
    uploads = loopback if uploads is None else uploads
    demo, url = serve(settings, host, port, concurrency, lock_llm, uploads)
    where = f"all interfaces, port {port}" if host in ("0.0.0.0", "::") else url
    print(f"rag ui: serving {settings.data_dir} at {where} (Ctrl-C to stop)", flush=True)
    if lock_llm:
        print(f"rag ui: answer backend locked to {settings.llm}"
              + (f" ({settings.llm_model})" if settings.llm != "extractive" and settings.llm_model else "")
              + "; visitors cannot change it (--no-lock-llm to allow)", flush=True)
    if not uploads:
        print("rag ui: uploads are off; visitors cannot add papers (--upload to allow)", flush=True)
    demo.block_thread()
