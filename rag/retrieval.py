"""Retrieval: dense (Chroma chunks rolled up to papers), BM25 (papers), and their fusion.

A question retrieves chunks but users think in papers: a paper's dense score is its best
chunk's cosine similarity, and the ranked list holds each paper once.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

from rag.errors import QueryError
from rag.settings import Mode, Settings
from rag.store import Index, locked


@dataclass
class Hit:
    rank: int
    paper_id: str
    title: str
    abstract: str
    score: float                    # the ranking's own score: fused RRF, cosine, or BM25
    dense_score: float | None       # best chunk's cosine similarity, when dense ran and found it
    bm25_score: float | None
    passage: str | None             # the best-matching chunk text
    date: str | None = None
    authors: int | None = None      # how many; the names, where known, are in meta
    source: str | None = None
    meta: dict = field(default_factory=dict)  # authors (names), year, venue, doi, url, ids, keywords

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Filters:
    """What a search may return, by the papers' metadata: years inclusive, a part of an author's
    name or of the venue (case-insensitive). A paper that lacks the field asked about is left out."""
    since: int | None = None
    until: int | None = None
    author: str | None = None
    venue: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise QueryError(f"since {self.since} is after until {self.until}, so no paper can match; swap them "
                             "or drop one")

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.since, self.until, self.author, self.venue))

    def admits(self, paper) -> bool:
        year = paper.meta.get("year") or (int(paper.date[:4]) if (paper.date or "")[:4].isdigit() else None)
        if (self.since or self.until) and year is None:
            return False
        if (self.since and year < self.since) or (self.until and year > self.until):
            return False
        if self.author and not any(self.author.casefold() in n.casefold() for n in paper.meta.get("authors", [])):
            return False
        return not self.venue or self.venue.casefold() in (paper.meta.get("venue") or "").casefold()


def check_query(query: str, settings: Settings) -> str:
    query = query.strip()
    if not query:
        raise QueryError("the query is empty")
    if len(query) > settings.max_query_chars:
        raise QueryError(f"the query is {len(query):,} characters long; the limit is "
                         f"{settings.max_query_chars:,} (RAG_MAX_QUERY_CHARS)")
    return query


def zscore_fusion(rankings: list[tuple[dict[str, float], float]]) -> dict[str, float]:
    """Weighted sum of each ranking's scores standardised over its own candidates. Scores keep
    how far ahead a paper is (RRF keeps only its rank); standardising makes cosine similarities
    and BM25 scores comparable. A paper only one ranking found gets only that ranking's share.
    Tuned on SciFact train claims: +0.017 nDCG@10 over the best RRF (evals/tune_scifact.py)."""
    import numpy as np

    fused: dict[str, float] = {}
    for scores, weight in rankings:
        if not scores:
            continue
        values = np.fromiter(scores.values(), dtype=float)
        mean, std = float(values.mean()), float(values.std())
        for pid, score in scores.items():
            fused[pid] = fused.get(pid, 0.0) + weight * ((score - mean) / std if std > 0 else 1.0)
    return fused


def rrf(rankings: list[tuple[list[str], float]], k: int) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: sum of weight / (k + rank) over the rankings."""
    fused: dict[str, float] = {}
    for ids, weight in rankings:
        for rank, pid in enumerate(ids, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (k + rank)
    return fused


class Retriever:
    """Opens the index once; each search takes the shared lock so an ingest never runs under it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        if settings.chroma_url:   # build or refresh this data dir's caches of the server first
            from rag.cache import follow

            follow(settings, wait=settings.lock_wait)
        with locked(settings, exclusive=False, wait=settings.lock_wait):
            self._open()
        self._followed = time.monotonic()
        # Loaded once, by the model check that opening the index makes: a reopen checks the same model.
        self.embedder = self.index.embedder
        self._encoder = None
        # The UI's worker threads share one Retriever: SQLite, Chroma and bm25s are not
        # promised to be safe across threads, and a search takes ~10 ms, so serialise.
        self._mutex = threading.Lock()

    def _open(self) -> None:
        self.index = Index.open_for_query(self.settings)
        self.manifest = self.index.catalog.manifest()
        self._generation = self.index.catalog.generation()

    def _refresh_if_changed(self) -> None:
        """Another process ingested since we opened: reopen Chroma and BM25 (held under the lock)."""
        if self.index.replaced():  # a rebuild switched to a whole new generation
            self.index.close()
            self._open()  # the same model (open checks it), but perhaps at another precision
            if self.index.embedder.fingerprint != self.embedder.fingerprint:
                self.embedder, self._encoder = self.index.embedder, None
            return
        generation = self.index.catalog.generation()
        if generation != self._generation:
            self.index.vectors.close()  # reopened at its next use, with what the ingest wrote
            self.index.bm25.forget()
            self._generation = generation

    def _follow(self) -> None:
        """With a server, what other nodes wrote since: checked at most every `RAG_FOLLOW_EVERY` seconds
        (one request), fetched only when the server's generation moved. Before the shared lock: the
        refresh writes this data dir's caches, and an ingest here (which updates them itself) makes it wait
        for nothing."""
        if not self.settings.chroma_url or time.monotonic() - self._followed < self.settings.follow_every:
            return
        from rag.cache import follow

        follow(self.settings)
        self._followed = time.monotonic()

    def close(self) -> None:
        self.index.close()

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Texts as BM25 sees them (stemmed terms), for the answer decision."""
        return self.index.bm25.tokenize(texts)

    def doc_freqs(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """(papers, papers holding each term), read under the same lock and mutex as a search."""
        with self._mutex, locked(self.settings, exclusive=False, wait=self.settings.lock_wait):
            self._refresh_if_changed()
            return self.index.bm25.doc_freqs(terms)

    def paper(self, paper_id: str):
        """One paper's catalog row (rag.store.Paper), or None: read as a search reads."""
        with self._mutex, locked(self.settings, exclusive=False, wait=self.settings.lock_wait):
            self._refresh_if_changed()
            return self.index.catalog.papers([paper_id]).get(paper_id)

    def embed_query(self, query: str):
        if self._encoder is None:
            self._encoder = self.embedder.query_encoder(self.index.models_dir(self.manifest))
        return self._encoder.encode(query)

    def _dense(self, vector, n_papers: int) -> tuple[list[str], dict[str, float], dict[str, str]]:
        """Papers ranked by their best chunk: (paper ids, best cosine per paper, best chunk id)."""
        # A paper has a few chunks: over-fetch so n_papers distinct papers survive the roll-up.
        chunks = self.index.vectors.search(vector, n_papers * 3)
        best: dict[str, float] = {}
        best_chunk: dict[str, str] = {}
        for chunk_id, pid, sim in chunks:
            if pid not in best:
                best[pid], best_chunk[pid] = sim, chunk_id
        ranked = list(best)[:n_papers]
        return ranked, best, best_chunk

    def search(self, query: str, k: int | None = None, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        query = check_query(query, self.settings)
        k = k or self.settings.top_k
        mode = mode or self.settings.mode
        # Filters drop candidates from both rankings before fusion: look deeper so k can still be met.
        depth = max(self.settings.candidates, k) * (5 if filters else 1)
        dense_ids: list[str] = []
        dense: dict[str, float] = {}
        best_chunk: dict[str, str] = {}
        bm25: dict[str, float] = {}
        bm25_ids: list[str] = []
        # Embedded before the lock: it needs only the model, and an ingest's writes wait for the lock.
        vector = self.embed_query(query) if mode in ("dense", "hybrid") else None
        self._follow()
        with self._mutex, locked(self.settings, exclusive=False, wait=self.settings.lock_wait):
            self._refresh_if_changed()
            if vector is not None:
                dense_ids, dense, best_chunk = self._dense(vector, depth)
            if mode in ("bm25", "hybrid"):
                found = self.index.bm25.search(query, depth)
                bm25_ids = [pid for pid, _ in found]
                bm25 = dict(found)
            if filters:
                known = self.index.catalog.papers(list(dict.fromkeys(dense_ids + bm25_ids)))
                kept = {pid for pid, paper in known.items() if filters.admits(paper)}
                dense_ids = [pid for pid in dense_ids if pid in kept]
                bm25_ids = [pid for pid in bm25_ids if pid in kept]
                bm25 = {pid: bm25[pid] for pid in bm25_ids}
            if mode == "dense":
                scores = {pid: dense[pid] for pid in dense_ids}
            elif mode == "bm25":
                scores = bm25
            elif self.settings.fusion == "rrf":
                scores = rrf([(dense_ids, self.settings.dense_weight), (bm25_ids, self.settings.bm25_weight)],
                             self.settings.rrf_k)
            else:
                scores = zscore_fusion([({pid: dense[pid] for pid in dense_ids}, self.settings.dense_weight),
                                        (bm25, self.settings.bm25_weight)])
            # Ties (common in RRF) fall back to the dense similarity, then the id, for a stable order.
            ranked = sorted(scores, key=lambda pid: (-scores[pid], -dense.get(pid, -1.0), pid))
            # Vectors the catalog does not know (left by an ingest killed before its commit) are
            # skipped, and the next known papers fill k in their place.
            order: list[str] = []
            papers: dict = {}
            for start in range(0, len(ranked), 2 * k):
                window = ranked[start:start + 2 * k]
                papers.update(self.index.catalog.papers(window))
                order += [pid for pid in window if pid in papers]
                if len(order) >= k:
                    break
            order = order[:k]
            passages = self.index.vectors.texts([best_chunk[pid] for pid in order if pid in best_chunk], papers)
        hits = []
        for rank, pid in enumerate(order, start=1):
            paper = papers[pid]
            hits.append(Hit(rank=rank, paper_id=pid, title=paper.title, abstract=paper.abstract,
                            score=round(scores[pid], 6), dense_score=dense.get(pid), bm25_score=bm25.get(pid),
                            passage=passages.get(best_chunk.get(pid, "")), date=paper.date, authors=paper.authors,
                            source=paper.source, meta=paper.meta))
        return hits
