"""The `rag` command: thin flags over the library. Kept light to import: every heavy
module (torch, chromadb, llama-index, gradio) is imported inside the command that needs it."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rag.decision import describe, match_label
from rag.errors import ConfigError, RagError
from rag.settings import BACKENDS, MODES
from rag.text import reference_label

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Ask questions of a collection of paper abstracts; every claim cites its paper.",
                  epilog="\b\nStart here:\n  rag ingest ~/Zotero              # or library.bib, export.ris, seeds/ ..."
                         "\n  rag ask \"What does QLoRA quantize?\"\n  rag chat                         "
                         "# follow-up questions\n  rag ui                           # the same in a browser"
                         "\n\nrag COMMAND --help shows each command's options, examples and environment variables.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _Command(typer.core.TyperCommand):
    """Help that reads naturally: `rag ask [OPTIONS] QUESTION`, not typer's `{question}` and
    `<str>` decorations of arguments."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        arguments = [(p.metavar or p.name.upper(), p.help or "") for p in self.get_params(ctx)
                     if p.param_type_name == "argument"]
        options = [r for p in self.get_params(ctx) if p.param_type_name == "option" and (r := p.get_help_record(ctx))]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def command(*args, **kwargs):
    return app.command(*args, cls=_Command, **kwargs)


# Filters on the papers' metadata, for search and ask (applied to both rankings before fusion).
Since = Annotated[int | None, typer.Option(help="Only papers from this year on.", metavar="YEAR", show_default=False)]
Until = Annotated[int | None, typer.Option(help="Only papers up to this year.", metavar="YEAR", show_default=False)]
Author = Annotated[str | None, typer.Option(help="Only papers with an author whose name contains this.",
                                            metavar="NAME", show_default=False)]
Venue = Annotated[str | None, typer.Option(help="Only papers whose venue contains this.", metavar="TEXT",
                                           show_default=False)]
# The answer backend, for ask, chat, eval and mcp.
Llm = Annotated[str | None, typer.Option("--llm", metavar="BACKEND", show_default=False, help=(
    f"Who writes the answer: {', '.join(BACKENDS)} [env RAG_LLM; default extractive, offline]."))]
Model = Annotated[str | None, typer.Option("--model", metavar="NAME", show_default=False,
                                           help="LLM model name [env RAG_LLM_MODEL].")]
TopK = Annotated[int | None, typer.Option("-k", "--top-k", metavar="N", show_default=False,
                                          help="Papers given to the LLM as sources [default 5].")]

# Environment variables each command's help lists, with what they do.
ENV_HELP = {
    "RAG_DATA_DIR": "where the index lives",
    "RAG_COLLECTION": "which collection in it",
    "RAG_CHROMA_URL": "a Chroma server instead of the embedded store",
    "RAG_EMBED_MODEL": "the embedding model (packaged name or local directory)",
    "RAG_LLM": f"the answer backend: {', '.join(BACKENDS)}",
    "RAG_LLM_MODEL": "the LLM model name",
    "OPENAI_BASE_URL": "an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, LM Studio)",
    "OPENAI_API_KEY": "its key",
    "OLLAMA_HOST": "the Ollama server (default http://127.0.0.1:11434)",
    "RAG_MAX_UPLOAD_MB": "largest file a visitor may add from the page",
}
INDEX_ENV = ("RAG_DATA_DIR", "RAG_COLLECTION", "RAG_CHROMA_URL")
LLM_ENV = ("RAG_LLM", "RAG_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OLLAMA_HOST")


def _examples(*commands: str, env: tuple[str, ...] = INDEX_ENV) -> str:
    """A command's epilog: examples, then the environment it honours. `\\b` keeps click from
    re-wrapping the lines."""
    width = max(map(len, env))
    return ("\b\nExamples:\n" + "\n".join(f"  {c}" for c in commands)
            + "\n\n\b\nEnvironment:\n" + "\n".join(f"  {name:<{width}}  {ENV_HELP[name]}" for name in env))


def _filters(since: int | None, until: int | None, author: str | None, venue: str | None):
    from rag.retrieval import Filters

    return Filters(since, until, author, venue) or None


# Options every index-using command takes, after the command name as users type them.
DataDir = Annotated[Path | None, typer.Option(help="Index directory [env RAG_DATA_DIR].", metavar="DIR",
                                               show_default=False)]
Collection = Annotated[str | None, typer.Option(help="Collection name [env RAG_COLLECTION; default papers].",
                                                   metavar="NAME", show_default=False)]
EmbedModel = Annotated[str | None, typer.Option(
    help="'all-MiniLM-L6-v2' (packaged) or a local model directory [env RAG_EMBED_MODEL].", metavar="MODEL",
    show_default=False)]
ChromaUrl = Annotated[str | None, typer.Option(
    help="Use a Chroma server at this URL instead of the embedded store [env RAG_CHROMA_URL].", metavar="URL",
    show_default=False)]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]

# C0/C1 control characters, ESC among them: text from abstracts must not move the cursor,
# retitle the terminal or hide what follows.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: str) -> str:
    """Untrusted text (titles, abstracts, model output) printed as it is, minus control characters."""
    return _CONTROL.sub("", text)


def safe(text: str) -> str:
    """Untrusted text inside a rich markup string: no control characters, no markup of its own."""
    return escape(plain(text))


def _settings(**flags):
    from pydantic import ValidationError

    from rag.settings import Settings

    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"bad setting {field}: {first['msg'].removeprefix('Value error, ')}") from None


def _version(asked: bool) -> None:
    if not asked:
        return
    from importlib.metadata import PackageNotFoundError, version

    settings = _settings()
    try:
        mine = version("rag")
    except PackageNotFoundError:  # run from a checkout that was never installed
        mine = "unknown (not installed)"
    model = settings.embedder or settings.embed_model
    out.print(f"rag {mine}\nembedding model: {safe(model)}\ndata dir: {safe(str(settings.data_dir))}", highlight=False)
    raise typer.Exit()


@app.callback()
def _global(debug: Debug = False, version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version, embedding model and data dir.")]
        = False) -> None:
    pass


def _default_sources() -> list[Path]:
    here = Path("seeds")
    if here.is_dir():
        return [here]
    shipped = Path(__file__).resolve().parent.parent / "seeds"
    if shipped.is_dir():
        return [shipped]
    raise ConfigError("no PATH given and no seeds/ directory here; name the files to ingest")


class _ingest_progress:
    """A rich bar on stderr that appears only once there is something to embed."""

    def __init__(self, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err, transient=True,
                            # Off a terminal rich cannot redraw in place and leaves a blank line behind.
                            disable=quiet or not err.is_terminal)
        self.task = self.bar.add_task("embedding chunks", total=None)

    def __call__(self, done: int, total: int) -> None:
        if not self.bar.live.is_started:
            self.bar.start()
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()


@command(epilog=_examples(
    "rag ingest                              # the seeds/ folder",
    "rag ingest ~/Zotero                      # Zotero's own database, read-only",
    "rag ingest library.bib export.ris pubmed.nbib",
    "rag ingest --sync papers/                # also drop papers gone from these files",
    env=(*INDEX_ENV, "RAG_EMBED_MODEL")))
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Files or folders: BibTeX, RIS, CSL-JSON, PubMed, Web of Science, Zotero/Scopus CSV, zotero.sqlite, "
             "OpenAlex, Semantic Scholar, arXiv, JSONL/CSV with title+abstract, BEIR corpus.jsonl, seed pages. "
             "Default: seeds/.", metavar="PATH...", show_default=False)] = None,
    rebuild: Annotated[bool, typer.Option(
        help="Re-index only the PATHS given (or the seeds) into a new collection that replaces the old "
             "one when complete; if interrupted, the old one stays. Papers from other files are gone "
             "afterwards until you ingest them again.")] = False,
    sync: Annotated[bool, typer.Option(
        help="Also remove the papers first read from these files that they no longer contain.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    batch_size: Annotated[int | None, typer.Option(help="Chunks per embedding batch.", metavar="N")] = None,
    device: Annotated[str | None, typer.Option(help="Torch device for embedding (cpu, cuda).",
                                               metavar="DEVICE")] = None,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Parse, chunk, embed and index papers. Idempotent: unchanged papers are not re-embedded."""
    from rag.errors import IndexDamaged
    from rag.ingestion import ingest as run_ingest
    from rag.store import live_name

    settings = _settings(batch_size=batch_size, device=device, data_dir=data_dir, collection=collection,
                         embed_model=embed_model, chroma_url=chroma_url)
    try:
        before = live_name(settings)
    except IndexDamaged:  # the pointer to the live index is unreadable: --rebuild replaces it
        before = None

    def waiting() -> None:
        err.print(f"waiting for the ingest already running in {safe(str(settings.data_dir))} to finish…")

    try:
        with _ingest_progress(as_json) as progress:
            report = run_ingest(paths or _default_sources(), settings, progress=progress, rebuild=rebuild,
                                on_wait=waiting, sync=sync)
    except KeyboardInterrupt:
        if rebuild and live_name(settings) != before:
            err.print("interrupted after the switch: the new index is in use; the next ingest tidies up")
        elif rebuild:
            err.print("interrupted: the index is as it was before; run the same command again to rebuild")
        else:
            # Papers are committed in batches: what finished is indexed, the rest is not half-written.
            err.print("interrupted: papers committed so far stay indexed; run the same command again to finish")
        raise typer.Exit(130) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    out.print(f"[bold]{report.added}[/] added, {report.updated} updated, {report.unchanged} unchanged, "
              f"{report.duplicates} duplicates merged, {len(report.rejected)} rejected "
              f"({report.chunks_embedded} chunks embedded in {report.seconds:.1f} s)")
    if sync:
        out.print(f"{report.removed} removed (no longer in their files)")
    out.print(f"index: {report.papers_total} papers, {report.chunks_total} chunks in {settings.data_dir}")
    for r in report.rejected:
        err.print(f"[yellow]rejected[/] {safe(r.source)} {safe(r.location)}: {safe(r.reason)}", highlight=False)
    for note in report.notes:
        err.print(f"[yellow]note:[/] {safe(note)}", highlight=False)


def _print_hits(query: str, hits, as_json: bool, mode: str, floor: float) -> None:
    if as_json:
        print(json.dumps({"query": query, "mode": mode, "hits": [h.as_dict() for h in hits]},
                         ensure_ascii=False))
        return
    if not hits:
        out.print("no matching papers")
    for h in hits:
        title = h.title or (h.abstract[:80] + "…")
        meta = " · ".join(x for x in (reference_label(h.meta, h.date), h.paper_id) if x)
        out.print(f"[bold]{h.rank:>2}.[/] {safe(title)}  [dim]({match_label(h.dense_score, floor)} · {safe(meta)})[/]",
                  highlight=False)
        snippet = (h.passage or h.abstract).split("\n", 1)[-1]
        out.print(f"    [dim]{safe(snippet[:200])}{'…' if len(snippet) > 200 else ''}[/]", highlight=False)


def _for_each_line(handle, as_json: bool, key: str) -> None:
    """`handle` each non-blank stdin line (it returns 1 on failure); a bad query is reported on its
    own line and the others still run; the exit code says whether any failed."""
    from rag.errors import QueryError

    failed = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        try:
            failed += handle(line)
        except QueryError as e:
            failed += 1
            if as_json:
                print(json.dumps({key: line[:200], "error": str(e)}))
            else:
                err.print(f"error: {safe(str(e))}")
    if failed:
        raise typer.Exit(1)


@command(epilog=_examples(
    'rag search "LoRA initialization"',
    'rag search "speculative decoding" -k 10 --since 2024',
    "rag search - --json < queries.txt       # one JSON line per query"))
def search(
    query: Annotated[str, typer.Argument(help="The query, or '-' to read one query per line from stdin.",
                                         metavar="QUERY")],
    k: Annotated[int | None, typer.Option("-k", "--top-k", metavar="N", show_default=False,
                                          help="Papers to return [default 5].")] = None,
    mode: Annotated[str | None, typer.Option(help=f"{', '.join(MODES)} [default {MODES[0]}].", metavar="MODE",
                                             show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per query.")] = False,
    since: Since = None, until: Until = None, author: Author = None, venue: Venue = None,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Rank papers for a query: dense + BM25 fused, each paper once.

    Each hit shows how well it matches (strong, fair, weak) and its best passage's similarity to
    the query; --json gives the raw scores."""
    from rag.retrieval import Retriever

    settings = _settings(top_k=k, mode=mode, data_dir=data_dir, collection=collection,
                         embed_model=embed_model, chroma_url=chroma_url)
    retriever = Retriever(settings)
    filters = _filters(since, until, author, venue)

    def one(q: str) -> int:
        _print_hits(q, retriever.search(q, filters=filters), as_json, settings.mode, settings.refuse_below)
        return 0

    if query != "-":
        one(query)
        return
    _for_each_line(one, as_json, "query")


def _print_answer_tail(answer) -> None:
    """After the streamed text: what the citation check found, then the numbered sources."""
    if answer.error:
        err.print(f"[red]error:[/] {safe(answer.error)}", highlight=False)
    if answer.cut:
        err.print(f"[yellow]answer cut short:[/] {safe(answer.cut)}", highlight=False)
    if not answer.refused and not answer.verified:
        out.print("[yellow]unverified: the answer cites none of the sources[/]", highlight=False)
    out.print(f"[dim]{safe(describe(answer.decision, answer.evidence, answer.missing))}[/]", highlight=False)
    if answer.removed_citations:
        marks = ", ".join(f"[{n}]" for n in answer.removed_citations)
        out.print(f"[yellow]removed citations {marks}: no such source[/]", highlight=False)
    if not answer.refused:
        for v in answer.citations:
            if not v["supported"]:
                why = "cites nothing" if not v["cited"] else f"weak support {v['support']:.2f}"
                out.print(f"[yellow]unsupported ({why}):[/] {safe(v['sentence'])}", highlight=False)
    if answer.sources:
        out.print("\n[bold]Sources[/]" + (" (nearest papers; none answers the question)" if answer.refused else ""))
    for s in answer.sources:
        title = s.title or (s.abstract[:80] + "…")
        meta = " · ".join(x for x in (reference_label(s.meta, s.date), s.paper_id) if x)
        out.print(f"  \\[{s.n}] {safe(title)}  [dim]({safe(meta)})[/]", highlight=False)


@command(epilog=_examples(
    'rag ask "What does QLoRA quantize, and to how many bits?"',
    'OPENAI_BASE_URL=http://localhost:8080/v1 rag ask --llm openai "How is RLHF reward hacking measured?"',
    'rag ask --llm ollama --model llama3.2 --cite bibtex "Which papers compress KV caches?"',
    env=(*LLM_ENV, *INDEX_ENV)))
def ask(
    question: Annotated[str, typer.Argument(
        help="The question, or '-' to read one question per line from stdin.", metavar="QUESTION")],
    llm: Llm = None, model: Model = None, k: TopK = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per question.")] = False,
    since: Since = None, until: Until = None, author: Author = None, venue: Venue = None,
    cite: Annotated[str | None, typer.Option(
        help="After the answer, the cited papers as references: bibtex, ris or csl-json (with --json: a "
             "'references' field).", metavar="FORMAT", show_default=False)] = None,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Answer from the collection, every claim cited [n], or say the collection does not cover it."""
    from rag.answer import Asker, Done, Token
    from rag.errors import AnswerCut

    settings = _settings(llm=llm, llm_model=model, top_k=k, data_dir=data_dir, collection=collection,
                         embed_model=embed_model, chroma_url=chroma_url)
    from rag.cite import CITE_FORMATS, cited_sources, references

    if cite is not None and cite not in CITE_FORMATS:
        raise ConfigError(f"--cite must be one of {', '.join(CITE_FORMATS)}, not {cite!r}")
    asker = Asker(settings)
    filters = _filters(since, until, author, venue)

    def one(q: str) -> int:
        answer = None
        for event in asker.stream(q, filters=filters):
            if isinstance(event, Token) and not as_json:
                out.print(plain(event.text), end="", highlight=False, markup=False)
            elif isinstance(event, Done):
                answer = event.answer
        cited = references(cited_sources(answer), cite) if cite and cited_sources(answer) else None
        if as_json:
            print(json.dumps({**answer.as_dict(), **({"references": cited} if cite else {})}, ensure_ascii=False))
        else:
            if answer.answer or not answer.error:
                out.print()  # ends the streamed line
            _print_answer_tail(answer)
            if cite:
                out.print(f"\n[bold]References ({cite})[/]" if cited else "\n[dim]no cited papers to list[/]")
                if cited:
                    out.print(plain(cited), markup=False, highlight=False)
        if answer.error:
            return 1
        return AnswerCut.exit_code if answer.cut else 0

    if question != "-":
        raise typer.Exit(one(question))
    _for_each_line(one, as_json, "question")


def _line_reader(settings):
    """Questions from a terminal: line editing, and history kept across sessions in the data dir.
    From a pipe: plain lines, each echoed so that a transcript shows what was asked."""
    if not sys.stdin.isatty():
        def read() -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            out.print(f"[bold]›[/] {safe(line.rstrip())}", highlight=False)
            return line.rstrip("\n")
        return read
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    path = settings.data_dir / "chat_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        history = FileHistory(str(path))
    except OSError:  # a read-only data dir: history for this session only
        history = InMemoryHistory()
    prompt = PromptSession(history=history)
    return lambda: prompt.prompt("› ")


def _print_full_sources(sources) -> None:
    for s in sources:
        meta = " · ".join(x for x in (reference_label(s.meta, s.date), s.paper_id) if x)
        out.print(f"\n[bold]\\[{s.n}] {safe(s.title or 'untitled')}[/]  [dim]({safe(meta)})[/]", highlight=False)
        out.print(plain(s.abstract), markup=False, highlight=False)


@command(epilog=_examples(
    "rag chat",
    "rag chat --llm ollama --model llama3.2 --since 2023",
    "printf 'What is QLoRA?\\nHow much memory does it save?\\n' | rag chat",
    env=("RAG_LLM", "RAG_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OLLAMA_HOST", "RAG_DATA_DIR")))
def chat(
    llm: Llm = None, model: Model = None, k: TopK = None,
    since: Since = None, until: Until = None, author: Author = None, venue: Venue = None,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Chat in the terminal: follow-up questions build on earlier answers; /help lists commands.

    Ctrl-C stops the answer being written, Ctrl-D (or /quit) leaves."""
    from rag.answer import Done, Token
    from rag.chat import ChatSession
    from rag.errors import QueryError

    settings = _settings(llm=llm, llm_model=model, top_k=k, data_dir=data_dir, collection=collection,
                         embed_model=embed_model, chroma_url=chroma_url)
    import signal

    # A parent that ignores SIGINT (a script's background job, some CI runners) passes that on, and Python
    # then never raises KeyboardInterrupt: in a chat, Ctrl-C (or `kill -INT`) must stop the answer.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    session = ChatSession(settings, _filters(since, until, author, venue))
    read = _line_reader(settings)
    papers = session.retriever.index.catalog.counts()["papers"]
    err.print(f"[dim]rag chat · {papers} papers · answers by {session.asker.backend_name} · "
              "/help for commands, Ctrl-D to leave[/]", highlight=False)
    try:
        while True:
            try:
                line = read().strip()
            except KeyboardInterrupt:  # at the prompt: drop the line, as a shell does
                continue
            except EOFError:
                break
            if not line:
                continue
            if line.startswith("/"):
                reply = session.command(line)
                if reply.quit:
                    break
                if reply.sources is not None:
                    _print_full_sources(reply.sources)
                elif reply.text:
                    (err if reply.error else out).print(plain(reply.text), markup=False, highlight=False)
                continue
            events = session.ask(line)
            try:
                for event in events:
                    if isinstance(event, Token):
                        out.print(plain(event.text), end="", highlight=False, markup=False)
                    elif isinstance(event, Done):
                        if event.answer.answer or not event.answer.error:
                            out.print()
                        _print_answer_tail(event.answer)
                        out.print()
            except KeyboardInterrupt:
                events.close()
                err.print("\n[yellow]stopped[/] (this answer is not kept for follow-ups)", highlight=False)
            except QueryError as e:
                err.print(f"[red]error:[/] {safe(str(e))}", highlight=False)
    finally:
        session.close()


@command(epilog=_examples(
    "rag mcp                                  # speaks MCP on stdin/stdout; an AI assistant starts it",
    "RAG_DATA_DIR=~/papers-index rag mcp",
    env=(*INDEX_ENV, *LLM_ENV)))
def mcp(
    llm: Llm = None, model: Model = None, k: TopK = None,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Serve the collection to AI assistants (Claude Desktop, Cursor, VS Code, any MCP client) over stdio.

    Read-only: tools search_papers, ask_papers and get_paper, and the collection's status as a
    resource. Nothing can be ingested or removed through it."""
    from rag.mcp_server import serve

    serve(_settings(llm=llm, llm_model=model, top_k=k, data_dir=data_dir, collection=collection,
                    embed_model=embed_model, chroma_url=chroma_url))


def _format_eval(results: dict) -> None:
    from rich.table import Table

    if "beir" in results:
        beir = results["beir"]
        table = Table(title=f"BEIR {beir['dataset']} ({beir['queries']} queries, {beir['documents']} docs)")
        for col in ("mode", "nDCG@10", "R@100", "MRR@10", "queries/s"):
            table.add_column(col)
        for mode, m in beir["modes"].items():
            table.add_row(mode, f"{m['ndcg@10']:.3f}", f"{m['recall@100']:.3f}", f"{m['mrr@10']:.3f}",
                          f"{m['queries_per_s']}")
        out.print(table)
        from rag.evaluate import beir_warnings

        for note in beir_warnings(beir):
            err.print(f"[yellow]warning:[/] {note}")
        return
    table = Table(title=f"retrieval ({results['questions']} questions, answerable ones scored)")
    metrics = ["hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10"]
    for col in ["mode", "type", *metrics]:
        table.add_column(col)
    for mode, r in results["retrieval"].items():
        table.add_row(mode, "all", *(f"{r['all'][m]:.3f}" for m in metrics), style="bold")
        for qtype, row in r["by_type"].items():
            table.add_row("", qtype, *(f"{row[m]:.3f}" for m in metrics))
    out.print(table)
    answers = results.get("answers")
    if answers:
        table = Table(title=f"answers (backend {answers['backend']})")
        table.add_column("metric")
        table.add_column("value")
        from rag.evaluate import answer_table

        for row in answer_table(answers):
            table.add_row(*row)
        cal = answers["refusal_calibration"]
        if cal:
            table.add_row("similarity threshold alone (best / shipped)",
                          f"{cal['best_threshold']} / {results['settings']['refuse_below']}")
        out.print(table)
        from rag.evaluate import decision_table

        split = Table(title="the answer decision: tune / held-out questions")
        for col in ("metric", "tune", "held out"):
            split.add_column(col)
        for row in decision_table(answers):
            split.add_row(*row)
        out.print(split)


@command(epilog=_examples("rag doctor", "rag doctor --json --collection big"))
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Check that catalog, vectors and keyword index agree; repair what needs no embedding.

    Exit 0 when the index is whole (after repairs), 1 when something still needs you."""
    from rag.ingestion import doctor as run_doctor

    settings = _settings(data_dir=data_dir, collection=collection, embed_model=embed_model, chroma_url=chroma_url)
    report = run_doctor(settings)
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        for line in report.repaired:
            out.print(f"[green]repaired:[/] {safe(line)}", highlight=False)
        for line in report.problems:
            err.print(f"[red]problem:[/] {safe(line)}", highlight=False)
        if not report.problems:
            out.print(f"index whole: {report.papers} papers, {report.chunks} chunks"
                      + ("" if report.repaired else "; nothing to repair"))
    raise typer.Exit(1 if report.problems else 0)


@command("eval", epilog=_examples(
    "rag eval                                 # the seed questions; exit 1 below evals/thresholds.toml",
    "rag eval --beir path/to/scifact          # nDCG@10, R@100 on a BEIR dataset",
    "rag eval --llm openai --report eval-report/",
    env=(*LLM_ENV, "RAG_DATA_DIR", "RAG_EMBED_MODEL")))
def eval_(
    beir: Annotated[Path | None, typer.Option(help="Run a BEIR-format dataset dir instead of evals/.",
                                              metavar="DIR", show_default=False)] = None,
    questions: Annotated[Path | None, typer.Option(help="Question set [default evals/questions.jsonl].",
                                                   metavar="FILE", show_default=False)] = None,
    thresholds: Annotated[Path | None, typer.Option(help="Gate [default evals/thresholds.toml].", metavar="FILE",
                                                    show_default=False)] = None,
    llm: Llm = None, model: Model = None,
    answers: Annotated[bool, typer.Option(help="Also evaluate answers (not only retrieval).")] = True,
    report: Annotated[Path | None, typer.Option(help="Write a Markdown report with plots here.", metavar="DIR",
                                                show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    collection: Annotated[str, typer.Option(help="Collection the seeds are ingested into for the eval.",
                                            metavar="NAME")] = "eval-seeds",
    data_dir: DataDir = None, embed_model: EmbedModel = None, chroma_url: ChromaUrl = None,
    debug: Debug = False,
) -> None:
    """Score retrieval and answers on evals/ (exit 1 below the thresholds), or a BEIR dataset."""
    from rag import evaluate

    settings = _settings(llm=llm, llm_model=model, data_dir=data_dir, embed_model=embed_model,
                         chroma_url=chroma_url, collection=collection)
    with _ingest_progress(as_json) as progress:
        if beir is not None:
            results = {"beir": evaluate.run_beir(beir, settings, progress=progress)}
        else:
            results = evaluate.run_seed_eval(settings, questions or evaluate.EVALS_DIR / "questions.jsonl",
                                             answers=answers, progress=progress)
    failures = [] if beir else evaluate.check_thresholds(
        results, evaluate.load_thresholds(thresholds or evaluate.EVALS_DIR / "thresholds.toml"))
    results["failures"] = failures
    if report is not None:
        from rag.eval_report import write_report

        write_report(results, report)
    if as_json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        _format_eval(results)
        for line in failures:
            err.print(f"[red]below threshold:[/] {line}", highlight=False)
        if report is not None:
            out.print(f"report written to {report / 'README.md'}")
    if failures:
        raise typer.Exit(1)


@command(epilog=_examples(
    "rag ui                                   # http://127.0.0.1:7860",
    "rag ui --port 8000 --llm ollama --model llama3.2",
    "rag ui --host 0.0.0.0 --no-upload        # on the network: backend locked, no uploads",
    env=(*LLM_ENV, *INDEX_ENV, "RAG_MAX_UPLOAD_MB")))
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine.",
                                      metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.", metavar="PORT")] = 7860,
    concurrency: Annotated[int, typer.Option(min=1, help="Questions answered at once; more wait in the queue.",
                                             metavar="N")] = 2,
    llm: Llm = None, model: Model = None,
    lock_llm: Annotated[bool | None, typer.Option(
        "--lock-llm/--no-lock-llm", show_default="locked unless --host is a loopback address",
        help="Fix the answer backend, model and URLs to the server's; visitors cannot point the server "
             "at another URL.")] = None,
    upload: Annotated[bool | None, typer.Option(
        "--upload/--no-upload", show_default="allowed only when --host is a loopback address",
        help="Let visitors add papers from the page (files up to RAG_MAX_UPLOAD_MB). Off: no Add tab, and "
             "the server refuses every upload.")] = None,
    data_dir: DataDir = None, collection: Collection = None, embed_model: EmbedModel = None,
    chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Serve the browser chat UI (Gradio) on the same index and functions as the CLI."""
    from rag.ui import launch

    settings = _settings(llm=llm, llm_model=model, data_dir=data_dir, collection=collection,
                         embed_model=embed_model, chroma_url=chroma_url)
    launch(settings, host=host, port=port, concurrency=concurrency, lock_llm=lock_llm, uploads=upload)


@command(epilog=_examples(
    "rag remove 3f2a9c0d1e2b4a5c             # a paper id from `rag search --json`",
    "rag remove old-export.bib                # every paper first read from this file"))
def remove(
    targets: Annotated[list[str], typer.Argument(
        help="Paper ids (as `rag search --json` shows them) or files whose papers to remove.",
        metavar="PAPER_ID|PATH...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    data_dir: DataDir = None, collection: Collection = None, chroma_url: ChromaUrl = None, debug: Debug = False,
) -> None:
    """Take papers out of the index (catalog, vectors and keyword index), by id or by source file."""
    from rag.ingestion import remove as run_remove

    report = run_remove(targets, _settings(data_dir=data_dir, collection=collection, chroma_url=chroma_url))
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        out.print(f"{report.removed} papers removed ({report.chunks} chunks); {report.papers_total} left")
        for target in report.not_found:
            err.print(f"[yellow]not found:[/] {safe(target)} (no indexed paper has this id or came from this file)",
                      highlight=False)
    if report.not_found:
        raise typer.Exit(1)


@command(epilog=_examples("rag status", "rag status --json"))
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    data_dir: DataDir = None, collection: Collection = None, chroma_url: ChromaUrl = None,
    debug: Debug = False,
) -> None:
    """Show the data dir, embedding model and what is indexed."""
    from rag.store import status as index_status

    info = index_status(_settings(data_dir=data_dir, collection=collection, chroma_url=chroma_url))
    del info["titles"]
    if as_json:
        print(json.dumps(info, ensure_ascii=False))
        return
    out.print(f"data dir:     {info['data_dir']} (collection {info['collection']})")
    out.print(f"vector store: {info['chroma']}")
    out.print(f"model:        {info['embed_model'] or '— (nothing indexed yet: run `rag ingest`)'}")
    out.print(f"papers:       {info['papers']}   chunks: {info['chunks']}")
    for f in info["files"]:
        out.print(f"  {f['papers']:>5}  {safe(f['path'])}", highlight=False)


def main() -> None:
    """Entry point: one clear line for every error we expect; tracebacks only with --debug.
    Usage errors, --help and Ctrl-C are handled by typer's standalone mode."""
    debug = "--debug" in sys.argv or os.environ.get("RAG_DEBUG") == "1"
    try:
        app()
    except RagError as e:
        if debug:
            raise
        err.print(f"[red]error:[/] {safe(str(e))}", highlight=False)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # a bug: say so in one line, keep the traceback for --debug
        if debug:
            raise
        err.print(f"[red]internal error:[/] {type(e).__name__}: {safe(str(e))} (rerun with --debug for the traceback)",
                  highlight=False)
        sys.exit(70)


if __name__ == "__main__":
    main()
