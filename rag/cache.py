"""The data dir's catalog and BM25 index as caches of the vector store, which holds everything.

Each chunk in Chroma carries its paper's metadata and `g`, the generation of the write that stored
it; the first chunk of a paper also carries the rest of its catalog row (title, abstract, source,
date, chunk count). The collection's own metadata records the manifest (model, chunking) and the
latest generation, and with a server the anchor collection `<collection>.live` names the live one.

So a node pointed at a Chroma server with an empty data dir builds its catalog and BM25 index from
the server, paging through it, with no embedding; a node that sees a newer generation fetches only
the chunks stamped since (less `SKEW`, for writers whose clocks or writes overlap), drops the papers
whose chunks are gone, and rebuilds BM25. The embedded store is followed the same way: a lost
catalog is rebuilt from it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

from rag.errors import IndexBusy, IndexDamaged, IndexMissing
from rag.settings import Settings
from rag.sources import Paper
from rag.store import (
    Catalog,
    Index,
    VectorStore,
    generation_number,
    live_name,
    locked,
    server_live,
    switch_live,
    writing,
)

# A write is stamped before its chunks reach the server and published after: a follower re-reads
# the writes of this many microseconds before the last generation it saw, so a write that overlapped
# another (or came from a machine whose clock is a little behind) is not missed.
SKEW = 120 * 1_000_000


@dataclass
class Followed:
    changed: bool = False
    papers: int = 0      # catalog rows written from the vector store
    removed: int = 0
    full: bool = False   # built from nothing (an empty data dir, or a new live generation)


def follow(settings: Settings, wait: float = 0.0) -> Followed:
    """Bring this data dir's caches up to the vector store. Another ingest or follow on this node
    holding the collection for longer than `wait` seconds: nothing is done (it is updating them).

    Caught up means the same generation and as many chunks as the store holds: two writers that
    overlap can each record their own generation last, but not the other's chunks."""
    live = server_live(settings) or live_name(settings)
    vectors = VectorStore(settings, live)
    try:
        manifest, generation = vectors.state()
        total = vectors.count()
    finally:
        vectors.close()
    if manifest is None:
        raise IndexMissing(f"collection {live!r} in {vectors.where} records no manifest: it was written "
                           "by an older rag or is empty; run `rag ingest` (or `--rebuild`) on a node with the files")
    if _caught_up(settings, live, generation, total):
        return Followed()
    try:
        with writing(settings, wait):
            if _caught_up(settings, live, generation, total):   # another process did it while this one waited
                return Followed()
            return _follow(settings, live, manifest, generation)
    except IndexBusy:
        return Followed()


def _caught_up(settings: Settings, live: str, generation: int, total: int) -> bool:
    path = settings.data_dir / live / "catalog.sqlite"
    if not path.is_file() or live_name(settings) != live:
        return False
    catalog = Catalog(path)
    try:
        return catalog.synced() == generation and catalog.counts()["chunks"] == total
    finally:
        catalog.close()


def _follow(settings: Settings, live: str, manifest, generation: int) -> Followed:
    index = Index(settings, live)
    try:
        full = index.catalog.manifest() is None
        report = Followed(changed=True, full=full)
        if full:
            index.catalog.set_manifest(manifest)
        # What was written since (a margin behind: writes overlap); then, if the counts still differ,
        # what was removed (ids only), and as a last resort everything.
        report.papers = _fetch(index, None if full else max(0, index.catalog.synced() - SKEW))
        total = index.vectors.count()
        if index.catalog.counts()["chunks"] > total:
            present = index.vectors.paper_ids()
            gone = [pid for pid in index.catalog.hashes() if pid not in present]
            with locked(settings, exclusive=True, wait=600):
                index.catalog.remove(gone)
                index.catalog.bump_generation()
            report.removed = len(gone)
        if not full and index.catalog.counts()["chunks"] < total:
            report.papers += _fetch(index, None)
        index.bm25.build(index.catalog.all_papers(), built_from=index.catalog.digest(),
                         swap=locked(settings, exclusive=True, wait=600))
        with locked(settings, exclusive=True, wait=600):
            index.catalog.set_synced(generation)
            index.catalog.bump_generation()
        if full:
            _prepare_queries(index, manifest)
    finally:
        index.close()
    if live_name(settings) != live:   # a rebuild elsewhere switched the server to another generation
        switch_live(settings, live, anchor=False)
        for old in settings.data_dir.iterdir():   # the old generation's caches; its vectors went with it
            if old.is_dir() and old.name != live and generation_number(settings.collection, old.name) is not None:
                shutil.rmtree(old, ignore_errors=True)
    return report


def _fetch(index: Index, since: int | None) -> int:
    papers, chunks = _papers(index.vectors, since)
    with locked(index.settings, exclusive=True, wait=600):
        index.catalog.add(papers, chunks)
        index.catalog.bump_generation()
    return len(papers)


def _papers(vectors: VectorStore, since: int | None) -> tuple[list[Paper], dict[str, int]]:
    """Catalog rows from the chunks' metadata: a paper's first chunk carries its row."""
    papers: list[Paper] = []
    counts: dict[str, int] = {}
    for chunk_id, meta in vectors.rows(since):
        if meta.get("n") != 0:
            continue
        if "abstract" not in meta:
            raise IndexDamaged(f"chunk {chunk_id} in {vectors.where} was written by an older rag and carries no "
                               "abstract; re-index with `rag ingest --rebuild PATH ...` on a node with the files")
        try:   # what another node wrote: checked like any input
            extra = json.loads(meta["meta"]) if meta.get("meta") else {}
            papers.append(Paper(str(meta["paper_id"]), str(meta.get("title", "")), str(meta["abstract"]),
                                str(meta.get("source", "")), meta.get("n_authors"), meta.get("date"),
                                extra if isinstance(extra, dict) else {}))
            counts[str(meta["paper_id"])] = int(meta.get("chunks", 1))
        except (KeyError, TypeError, ValueError) as e:
            raise IndexDamaged(f"chunk {chunk_id} in {vectors.where} has unreadable metadata ({e!r}); re-index "
                               "with `rag ingest --rebuild PATH ...` on a node with the files") from None
    return papers, counts


def _prepare_queries(index: Index, manifest) -> None:
    """The query encoder (an ONNX export of the model) where the ingest node would have left it."""
    from rag.embedding import for_index, load_embedder

    embedder = for_index(load_embedder(index.settings), manifest.model_fingerprint)
    if embedder.fingerprint == manifest.model_fingerprint:
        embedder.prepare_queries(index.models_dir(manifest))
