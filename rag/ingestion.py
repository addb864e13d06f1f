"""Ingest: files → papers → chunks → vectors + BM25, idempotent by content hash."""
from __future__ import annotations

import contextlib
import functools
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ConfigError, IndexDamaged, IndexMissing, ModelMismatch, SourceError
from rag.settings import Settings
from rag.sources import LoadResult, Paper, Rejected, identifiers, load_windows, merge_meta, same_work, walk
from rag.store import (
    Index,
    Manifest,
    VectorStore,
    content_hash,
    disk_full,
    free_mb,
    generation_name,
    generation_number,
    is_disk_full,
    live_name,
    live_root,
    locked,
    next_generation,
    switch_live,
    writing,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np

    from rag.chunking import Chunk
    from rag.embedding import Embedder

# Papers embedded and committed together: small enough that a killed run loses little,
# large enough to keep the encoder's batches full.
PAPERS_PER_COMMIT = 128
# Papers read from the files and held at once: a library bigger than this (the arXiv snapshot's 2.7M) streams
# through in windows of it, so memory stays that of one window (about 3 KB a paper with its chunks).
PAPERS_PER_WINDOW = 50_000
# How long one write (a batch of vectors, the BM25 swap) waits for the searches in flight: searches
# hold the lock for milliseconds and none starts while a write waits, so this is only a backstop.
WRITE_WAIT = 600.0

Progress = Callable[[int, int], None]  # (chunks embedded so far, total chunks to embed)


def _write(settings: Settings) -> contextlib.AbstractContextManager:
    """The data dir's exclusive lock, for one short write: searches wait for it, never for embedding."""
    return locked(settings, exclusive=True, wait=WRITE_WAIT)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    chunks_embedded: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what the user should know beyond the counts
    removed: int = 0   # with sync: papers the files no longer hold
    papers_total: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["rejected"] = [r.__dict__ for r in self.rejected]
        return d


def _check_manifest(existing: Manifest | None, wanted: Manifest, root: Path) -> None:
    if existing is None:
        return
    if existing.model_fingerprint != wanted.model_fingerprint:
        raise ModelMismatch(f"the index in {root} was built with {existing.embed_model}; refusing to mix in "
                            f"vectors from {wanted.embed_model}. Use another data dir or collection, "
                            "or `rag ingest --rebuild`")
    if (existing.chunk_tokens, existing.chunk_overlap) != (wanted.chunk_tokens, wanted.chunk_overlap):
        raise ConfigError(f"the index in {root} was chunked at {existing.chunk_tokens}/{existing.chunk_overlap} "
                          f"word-pieces, not {wanted.chunk_tokens}/{wanted.chunk_overlap}; "
                          "use `rag ingest --rebuild` to re-chunk everything")


def drop_generation(settings: Settings, name: str) -> None:
    """Delete one generation of a collection: its vectors, then its catalog and BM25."""
    from chromadb.errors import NotFoundError

    store = VectorStore(settings, name)
    try:
        with contextlib.suppress(NotFoundError), store.errors():
            store.client().delete_collection(name)
    finally:
        store.close()
    shutil.rmtree(settings.data_dir / name, ignore_errors=True)


def generations(settings: Settings) -> set[str]:
    """Every generation of the collection with a directory or Chroma collection, live or not."""
    names = {p.name for p in settings.data_dir.iterdir() if p.is_dir()} if settings.data_dir.is_dir() else set()
    store = VectorStore(settings)
    try:
        with store.errors():
            names |= {c.name for c in store.client().list_collections()}
    finally:
        store.close()
    return {n for n in names if generation_number(settings.collection, n) is not None}


def drop_leftovers(settings: Settings, keep: str | None = None) -> list[str]:
    """Generations other than `keep` (the live one): a rebuild killed before its switch left its
    staged one, a rebuild killed after it left the old one. Returns the names dropped."""
    keep = keep or live_name(settings)
    dead = sorted(generations(settings) - {keep})
    if settings.chroma_url:   # a newer one may be another node's rebuild in progress: the next rebuild drops it
        newest = generation_number(settings.collection, keep)
        dead = [n for n in dead if (generation_number(settings.collection, n) or 0) < newest]
    for name in dead:
        drop_generation(settings, name)
    return dead


def set_aside(settings: Settings) -> Path:
    """Move a damaged embedded vector store out of the way, keeping it for whoever wants to look."""
    store = settings.data_dir / "chroma"
    aside = store.with_name(f"chroma.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    store.rename(aside)
    # The engine that failed to open it stays cached under the same path: a new client would get it.
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    return aside


def ingest(paths: list[Path], settings: Settings, progress: Progress | None = None, rebuild: bool = False,
           wait: float = 3600.0, on_wait: Callable[[], None] | None = None, sync: bool = False) -> IngestReport:
    """Index the papers in `paths`. One ingest runs at a time per data dir: another waits up to
    `wait` seconds for it (`on_wait` is called once when it starts waiting). Searches are never
    shut out for longer than one write (a batch of vectors, the BM25 swap). With `sync`, papers
    first read from these files that they no longer contain are removed."""
    from rag.embedding import load_embedder

    started = time.perf_counter()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SourceError(f"no such file or directory: {', '.join(missing)}")
    embedder = load_embedder(settings)
    windows = load_windows(paths, max_bytes=settings.max_file_mb * 1024 * 1024, window=PAPERS_PER_WINDOW)
    first = next(windows)   # the only one when it holds no papers
    report = IngestReport()
    if not first.papers:
        where = ", ".join(str(p) for p in paths)
        reasons = "; ".join(f"{Path(r.source).name} {r.location}: {r.reason}" for r in first.rejected[:3])
        more = f" and {len(first.rejected) - 3} more" if len(first.rejected) > 3 else ""
        detail = f" (rejected {reasons}{more})" if first.rejected else ""
        raise SourceError(f"no papers found in {where}{detail}; nothing was changed")
    windows = _starting_with(first, windows)
    del first   # a window is 50,000 papers: held by nothing once it is indexed

    with writing(settings, wait, on_wait), _full_disk_stops(settings):
        if rebuild:
            _rebuild(windows, settings, embedder, report, progress)
        else:
            with _write(settings):
                drop_leftovers(settings)
            present = _index(windows, settings, None, embedder, report, progress, keep_ids=sync)
            if sync:
                _sync(paths, present, settings, report)
    report.seconds = time.perf_counter() - started
    return report


def _starting_with(first: LoadResult, rest: Iterator[LoadResult]) -> Iterator[LoadResult]:
    """`first`, then `rest`, keeping no reference to a window once it is handed out."""
    held = [first]
    del first
    yield held.pop()
    yield from rest


def _rebuild(windows: Iterator[LoadResult], settings: Settings, embedder: Embedder, report: IngestReport,
             progress: Progress | None) -> None:
    """Build the next generation beside the live one, which answers searches until one atomic
    switch: a rebuild killed before it leaves the old index, after it the new one. Then the rest go."""
    with _write(settings):
        try:
            existing = generations(settings)
        except IndexDamaged as e:
            if settings.chroma_url:
                raise
            # Asked to re-index everything, over a store too damaged to open: start a new one.
            report.notes.append(f"{e}: moved it to {set_aside(settings)}; other collections it held must be "
                                "ingested again")
            existing = generations(settings)
        try:
            live = live_name(settings)
        except IndexDamaged:  # the pointer is unreadable: nothing is known to be live, the switch mends it
            live = None
        if live:  # what a killed rebuild left goes now, not after this one has doubled the disk used
            for name in existing - {live}:
                drop_generation(settings, name)
            existing = {live}
    staged = generation_name(settings.collection,
                             1 + max((generation_number(settings.collection, n) for n in existing), default=0))
    _index(windows, settings, staged, embedder, report, progress)
    switch_live(settings, staged)
    with _write(settings):  # no search still reads the old ones
        drop_leftovers(settings, keep=staged)


@contextlib.contextmanager
def _full_disk_stops(settings: Settings):
    """A full disk met anyway (by the catalog, BM25, the ONNX export) is one clear line. Each of
    those writes is atomic, and papers are committed after their vectors, so nothing is lost."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as e:
        if is_disk_full(e):
            raise disk_full(settings.data_dir) from None
        raise


def _index(windows: Iterator[LoadResult], settings: Settings, name: str | None, embedder: Embedder,
           report: IngestReport, progress: Progress | None, keep_ids: bool = False) -> set[str]:
    """Index the papers of each window into generation `name` (None: the live one). Embedding runs
    unlocked; each write to the index takes the write lock for just that write. Returns the ids of the
    papers read when `keep_ids` (for --sync)."""
    with _write(settings):
        index = Index(settings, name)
    try:
        existing = index.catalog.manifest()
        if existing is not None:
            embedder = _follow(embedder, existing, settings, report)
        chunk_tokens = min(settings.chunk_tokens, embedder.max_tokens)
        wanted = Manifest(embedder.name, embedder.fingerprint, 0, chunk_tokens, settings.chunk_overlap)
        _check_manifest(existing, wanted, index.root)

        # What queries use, and ingest embeds with: made (the ONNX export, in a child process) while this
        # thread chunks, and waited for before the first vector. Atomic on its own.
        prepared = _in_thread(embedder.prepare_queries, index.models_dir(wanted))
        files: dict[str, int] = {}
        present: set[str] = set()
        total = 0   # chunks to embed, as far as the windows read so far tell
        for window in windows:
            report.duplicates += window.duplicates
            report.rejected += window.rejected
            report.files += window.files
            papers = _merge_known(window.papers, index, report)
            known = index.catalog.hashes([p.paper_id for p in papers])
            todo = [p for p in papers if known.get(p.paper_id) != content_hash(p)]
            updated = sum(1 for p in todo if p.paper_id in known)
            report.updated += updated
            report.added += len(todo) - updated
            report.unchanged += len(papers) - len(todo)
            if todo:
                total = _embed(todo, known, index, embedder, wanted, progress, prepared, total)
            if unchanged := [p for p in papers if p.meta and known.get(p.paper_id) == content_hash(p)]:
                _set_meta(index, unchanged)
            files.update((f, 0) for f in window.files)   # a file is listed in the window it starts in
            for p in papers:
                if p.source in files:
                    files[p.source] += 1
            if keep_ids:
                present.update(p.paper_id for p in papers)
            del window, papers, todo, known, unchanged   # before the next window is read, not after
        report.chunks_embedded = total
        prepared.result()
        with _write(settings):
            _drop_orphans(index)
        if total or index.bm25.needs_build(index.catalog.digest()):
            _rebuild_keywords(index)
        index.catalog.record_files(files)
        counts = index.catalog.counts()
        report.papers_total, report.chunks_total = counts["papers"], counts["chunks"]
        return present
    finally:
        index.close()


def _follow(embedder: Embedder, existing: Manifest, settings: Settings, report: IngestReport) -> Embedder:
    """An index grows with the encoder that built it (its precision), whatever embed_precision or device say
    now: they choose for new indexes and --rebuild. Said when the user asked for something else."""
    from rag.embedding import for_index

    followed = for_index(embedder, existing.model_fingerprint)
    if followed.fingerprint != existing.model_fingerprint or followed.fingerprint == embedder.fingerprint:
        return followed   # the same encoder, or another model: _check_manifest says no
    if {"embed_precision", "device"} & settings.model_fields_set:
        report.notes.append(f"the index was built with {followed.name} vectors, so the new papers are embedded "
                            f"the same way; `rag ingest --rebuild` re-embeds everything with {embedder.name}")
    return followed


def _set_meta(index: Index, papers: list[Paper]) -> None:
    with _write(index.settings):
        if changed := index.catalog.set_meta(papers):
            generation, caught_up = _next_generation(index)
            index.vectors.set_meta([p for p in papers if p.paper_id in changed], changed, generation)
            index.catalog.bump_generation()
            _publish(index, generation, caught_up)


def _merge_known(papers: list[Paper], index: Index, report: IngestReport) -> list[Paper]:
    """Papers indexed before from another export (the same DOI, arXiv id or PMID, and a title that
    agrees) stay one paper: the indexed one keeps its vectors and gains the new record's metadata."""
    known = index.catalog.hashes([p.paper_id for p in papers if identifiers(p.meta)])
    fresh = [p for p in papers if p.paper_id not in known and identifiers(p.meta)]
    indexed = index.catalog.identified({k for p in fresh for k in identifiers(p.meta)}) if fresh else {}
    into: dict[str, list[Paper]] = {}
    for p in fresh:
        hit = next((indexed[k] for k in identifiers(p.meta) if k in indexed and same_work(p.title, indexed[k][1])),
                   None)
        if hit:
            into.setdefault(hit[0], []).append(p)
    if not into:
        return papers
    current = index.catalog.papers(list(into))
    _set_meta(index, [replace(paper, meta=functools.reduce(merge_meta, [p.meta for p in into[pid]], paper.meta))
                      for pid, paper in current.items()])
    merged = {id(p) for ps in into.values() for p in ps}
    report.duplicates += len(merged)
    report.notes.append(f"{len(merged)} paper(s) were indexed before from another file (same DOI, arXiv id or "
                        "PMID); their metadata was merged into the indexed paper")
    return [p for p in papers if id(p) not in merged]


def _sync(paths: list[Path], present: set[str], settings: Settings, report: IngestReport) -> None:
    index = Index(settings)
    try:
        gone = [pid for pid in index.catalog.from_files(list(walk(paths))) if pid not in present]
        _remove(index, gone, settings)
        report.removed = len(gone)
        counts = index.catalog.counts()
        report.papers_total, report.chunks_total = counts["papers"], counts["chunks"]
    finally:
        index.close()


@dataclass
class RemoveReport:
    removed: int = 0
    chunks: int = 0
    not_found: list[str] = field(default_factory=list)   # ids or paths that named no indexed paper
    papers_total: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def remove(targets: list[str], settings: Settings) -> RemoveReport:
    """Take papers out of the index: each target is a paper id or a file (its papers, as first read
    from it). The catalog rows go first: a run killed after that leaves only vectors no paper owns,
    which searches skip and the next ingest or `rag doctor` deletes; then the vectors, then BM25."""
    if not (live_root(settings) / "catalog.sqlite").is_file():
        raise IndexMissing(f"no index in {settings.data_dir} (collection {settings.collection!r}); nothing to remove")
    report = RemoveReport()
    with writing(settings), _full_disk_stops(settings):
        index = Index(settings)
        try:
            known = index.catalog.hashes()
            ids: dict[str, None] = {}
            files = []
            for target in targets:
                inside = list(walk([Path(target)])) if target not in known and Path(target).exists() else []
                if target in known:
                    ids[target] = None
                elif found := index.catalog.from_files(inside):
                    ids.update(dict.fromkeys(found))
                    files += inside
                else:
                    report.not_found.append(target)
            _remove(index, list(ids), settings, report)
            index.catalog.forget_files(files)
            report.papers_total = index.catalog.counts()["papers"]
        finally:
            index.close()
    return report


def _rebuild_keywords(index: Index) -> None:
    """BM25 from the catalog as it now is, built unlocked and swapped in under the write lock."""
    index.bm25.build(index.catalog.all_papers(), built_from=index.catalog.digest(),
                     swap=_write(index.settings))
    index.catalog.bump_generation()


def _remove(index: Index, ids: list[str], settings: Settings, report: RemoveReport | None = None) -> None:
    if not ids:
        return
    chunks = index.catalog.counts()["chunks"]
    with _write(settings):
        generation, caught_up = _next_generation(index)
        index.catalog.remove(ids)
        index.catalog.bump_generation()
        index.vectors.delete_papers(ids)
        _publish(index, generation, caught_up)
    _rebuild_keywords(index)
    if report is not None:
        report.removed += len(ids)
        report.chunks += chunks - index.catalog.counts()["chunks"]


@dataclass
class DoctorReport:
    papers: int = 0
    chunks: int = 0
    repaired: list[str] = field(default_factory=list)   # what was put right
    problems: list[str] = field(default_factory=list)   # what still needs the user

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def doctor(settings: Settings) -> DoctorReport:
    """Check that catalog, vectors and BM25 agree, and repair what can be derived without embedding:
    vectors no paper owns are deleted, papers without vectors leave the catalog (the next ingest of
    their file embeds them again), and BM25 is rebuilt from the catalog when damaged or stale."""
    if not (live_root(settings) / "catalog.sqlite").is_file():
        raise IndexMissing(f"no index in {settings.data_dir} (collection {settings.collection!r}); "
                           "run `rag ingest` first")
    report = DoctorReport()
    if settings.chroma_url:   # first what other nodes wrote, so their papers count as known
        from rag.cache import follow

        follow(settings, wait=WRITE_WAIT)
    with writing(settings), _write(settings):
        if dead := drop_leftovers(settings):
            report.repaired.append(f"deleted {len(dead)} index generations left by an interrupted rebuild")
        index = Index(settings)
        try:
            if index.catalog.manifest() is None:
                report.problems.append("the index is empty: run `rag ingest`")
                return report
            catalog = set(index.catalog.hashes())
            vectors = index.vectors.paper_ids()
            # With a server, vectors the catalog does not know are other nodes' papers: never deleted here.
            if not settings.chroma_url and (orphans := sorted(vectors - catalog)):
                index.vectors.delete_papers(orphans)
                report.repaired.append(f"deleted the vectors of {len(orphans)} papers the catalog never recorded")
            if unembedded := sorted(catalog - vectors):
                index.catalog.remove(unembedded)
                report.repaired.append(f"removed {len(unembedded)} papers without vectors from the catalog; "
                                       "`rag ingest` their files again to embed them")
            digest = index.catalog.digest()
            if why := index.bm25.damage() or ("stale" if index.bm25.needs_build(digest) else None):
                index.bm25.build(index.catalog.all_papers(), built_from=digest)
                report.repaired.append(f"rebuilt the keyword index from the catalog ({why})")
            if report.repaired:
                index.catalog.bump_generation()
            counts = index.catalog.counts()
            report.papers, report.chunks = counts["papers"], counts["chunks"]
            if index.vectors.count() != counts["chunks"]:
                report.problems.append(f"the vector store holds {index.vectors.count()} chunks, the catalog "
                                       f"{counts['chunks']}: re-index with `rag ingest --rebuild PATH ...`")
        finally:
            index.close()
    return report


def _drop_orphans(index: Index) -> None:
    """Vectors whose paper the catalog never recorded (a run killed between the upsert and the
    commit) are deleted. Counting first keeps the common case, nothing orphaned, cheap."""
    if index.settings.chroma_url:
        return   # vectors this catalog does not know are other nodes' papers, which it follows (rag.cache)
    if index.catalog.manifest() is None or index.vectors.count() == index.catalog.counts()["chunks"]:
        return
    orphans = index.vectors.paper_ids() - set(index.catalog.hashes())
    index.vectors.delete_papers(sorted(orphans))


def _in_thread(work: Callable[..., None], *args) -> Future:
    """`work(*args)` started in a thread of its own; its Future says when it is done (and raises its error)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="rag-prepare")
    try:
        return pool.submit(work, *args)
    finally:
        pool.shutdown(wait=False)


def _embed(todo: list[Paper], known: dict[str, str], index: Index, embedder: Embedder, wanted: Manifest,
           progress: Progress | None, prepared: Future, done: int) -> int:
    """Chunk, embed and write one window's papers; `done` chunks were embedded before it. Returns the
    chunks embedded so far."""
    from rag.chunking import Chunker

    chunker = Chunker(embedder.tokenizer(), wanted.chunk_tokens, wanted.chunk_overlap)
    if index.catalog.manifest() is None:
        # Searches may start after the first commit, long before this ingest builds the keyword
        # index at its end: until then they find an empty one (and rank by vectors alone).
        index.bm25.build([], built_from="", swap=_write(index.settings))
    with _write(index.settings):
        if index.catalog.manifest() is None:
            index.catalog.set_manifest(Manifest(**{**wanted.__dict__, "dim": embedder.dim}))
        # A changed paper may now have fewer chunks: drop its old ones before re-adding.
        index.vectors.delete_papers([p.paper_id for p in todo if p.paper_id in known])
    total = done

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    def chunked() -> Iterator[list[tuple[Paper, list[Chunk]]]]:
        """The first part chunked, then (while it embeds) the rest: the encoder does not wait for the whole
        window's chunking (and the splitter's import), and the window's size is known before the first write."""
        nonlocal total
        parts = [todo[start:start + PAPERS_PER_COMMIT] for start in range(0, len(todo), PAPERS_PER_COMMIT)]
        first = [(p, chunker.chunks(p)) for p in parts[0]]
        prepared.result()
        yield first
        rest = [[(p, chunker.chunks(p)) for p in part] for part in parts[1:]]
        window = sum(len(cs) for part in [first, *rest] for _, cs in part)
        total += window
        room(index.settings, window)  # all of it, before the first write: better now than half-way
        step(0)
        yield from rest

    for part, vectors in _embedded_ahead(embedder, chunked(), step):
        chunks = [c for _, cs in part for c in cs]
        room(index.settings, len(chunks))  # again: something else may have filled the disk meanwhile
        with _write(index.settings):
            generation, caught_up = _next_generation(index)
            index.vectors.upsert(chunks, vectors, {p.paper_id: p for p, _ in part}, generation)
            # Only now is the paper recorded: a crash before this line re-embeds it next run.
            index.catalog.add([p for p, _ in part], {p.paper_id: len(cs) for p, cs in part})
            index.catalog.bump_generation()  # open readers reload the vectors before their next search
            _publish(index, generation, caught_up)
    return total


def _embedded_ahead(embedder: Embedder, parts: Iterator[list[tuple[Paper, list[Chunk]]]],
                    progress: Callable[[int], None]) -> Iterator[tuple[list[tuple[Paper, list[Chunk]]], np.ndarray]]:
    """Each part with its vectors, in order, the next part already embedding in a thread while the caller
    writes this one: onnxruntime and the tokenizer run outside the GIL, so the Chroma upsert and the catalog
    commit overlap the embedding instead of adding to it, and so does taking the next part from `parts`.
    Progress is reported from the caller's thread (the UI's callback belongs to its request). A daemon
    thread: Ctrl-C or an error ends the ingest without waiting for a batch nobody will write."""
    import queue
    import threading

    messages: queue.SimpleQueue = queue.SimpleQueue()

    def work(texts: list[str]) -> None:
        try:
            messages.put(("done", embedder.encode(texts, progress=lambda n: messages.put(("progress", n)))))
        except BaseException as e:  # KeyboardInterrupt too: the caller raises it
            messages.put(("error", e))

    def start(part: list[tuple[Paper, list[Chunk]]]) -> None:
        texts = [c.text for _, cs in part for c in cs]
        threading.Thread(target=work, args=(texts,), name="rag-embed", daemon=True).start()

    part = next(parts, None)
    if part is not None:
        start(part)
    while part is not None:
        following = next(parts, None)
        while (message := messages.get())[0] == "progress":
            progress(message[1])
        if message[0] == "error":
            raise message[1]
        if following is not None:
            start(following)
        yield part, message[1]
        part = following


def _next_generation(index: Index) -> tuple[int, bool]:
    """The generation the next write stamps its chunks with, and whether this node's catalog holds
    every write before it (no other node wrote since it last caught up)."""
    try:
        _, current = index.vectors.state()
    except IndexMissing:
        current = 0
    return next_generation(max(current, index.catalog.synced())), current == index.catalog.synced()


def _publish(index: Index, generation: int, caught_up: bool) -> None:
    """Tell every node the collection changed (its metadata: manifest, generation). This node's
    catalog already has the write; it counts as caught up only if it was before."""
    index.vectors.mark(index.catalog.manifest(), generation)
    if caught_up:
        index.catalog.set_synced(generation)


# Disk a chunk takes, with margin: Chroma stores its text three or four times over (rows, their
# index, full-text search) beside the vector, about 12 KB at 384 dimensions; SQLite's journal
# needs as much again while a batch is written. A server keeps only the catalog row here.
BYTES_PER_CHUNK = 24_000
BYTES_PER_CHUNK_SERVER = 2_000


def room(settings: Settings, chunks: int) -> None:
    """Stop before a write that would leave less than `min_free_mb` free: on a full disk Chroma
    fails mid-write (and can damage its files), while a stop here leaves the index as it was."""
    per_chunk = BYTES_PER_CHUNK_SERVER if settings.chroma_url else BYTES_PER_CHUNK
    needed = chunks * per_chunk / 1e6 + settings.min_free_mb
    if free_mb(settings.data_dir) < needed:
        raise disk_full(settings.data_dir, needed)
