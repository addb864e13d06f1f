"""The index: Chroma (chunk vectors) and BM25 (papers) side by side, a paper catalog, the
manifest of what built them, and the locks that keep writers and readers apart.

Layout under the data dir:
    chroma/                          Chroma PersistentClient (unused with a Chroma server)
    locks/<collection>.lock, .gate   flock: each write holds them exclusively, searches shared
    locks/<collection>.ingest        flock: one ingest (or doctor) of that collection at a time
    <collection>.live                names the live generation; absent: <collection> itself
    <generation>/catalog.sqlite      papers, ingested files, manifest (model, chunking)
    <generation>/bm25/               bm25s index over title + abstract, ids in bm25/ids.json
    models/<fingerprint>/model.onnx  the encoder ingest and queries run (onnxruntime), exported by the first
                                     ingest at the index's precision (an int8 fingerprint ends in -int8)

A generation is `<collection>` or `<collection>-rebuild<N>`: its directory and its Chroma
collection carry that name. `rag ingest --rebuild` builds the next one and switches to it by one
atomic rename of the pointer file.

Crash safety: chunk vectors are upserted under stable ids before their paper row is
committed, so a run killed at any point leaves papers either fully indexed or absent
from the catalog, and a re-run upserts the same ids again (no duplicates). BM25 is
rebuilt from the catalog beside the live one and swapped in by rename.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ConfigError, DiskFull, IndexBusy, IndexDamaged, IndexMissing, ModelMismatch, RagError
from rag.settings import LIVE_SUFFIX, STAGING_SUFFIX, display_url
from rag.sources import Paper, identifiers

if TYPE_CHECKING:
    import numpy as np

    from rag.chunking import Chunk
    from rag.settings import Settings

SCHEMA = """
create table if not exists papers (
    paper_id text primary key, title text not null, abstract text not null, source text not null,
    authors integer, date text, chunks integer not null, content_hash text not null, meta text);
create table if not exists files (path text primary key, size integer, mtime_ns integer, papers integer);
create table if not exists meta (key text primary key, value text not null);
"""

# Chroma's own default embedding function downloads a model; we always pass vectors.
_CHROMA_SPACE = {"hnsw": {"space": "cosine"}}


@dataclass(frozen=True)
class Manifest:
    embed_model: str
    model_fingerprint: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int


def content_hash(paper: Paper) -> str:
    import hashlib

    return hashlib.sha1(f"{paper.title}\x00{paper.abstract}".encode()).hexdigest()[:16]


def _open_lock(path: Path, create: bool) -> int | None:
    """A descriptor to flock `path` with (a writer creates it), or None where a reader can neither
    open nor create it (a read-only file system or copy): no writer can change such an index, so
    there is nothing to keep out. flock works on a descriptor opened read-only."""
    if create:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        pass  # an index written before this lock file existed
    except PermissionError:
        return None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return None
        raise


def _flock(fd: int, mode: int, deadline: float, busy: str, on_wait: Callable[[], None] | None) -> None:
    waited = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            raise IndexBusy(busy)
        if on_wait and not waited:
            on_wait()
        waited = True
        time.sleep(0.05)


def unusable(data_dir: Path, error: OSError) -> ConfigError:
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(f"data dir {data_dir} is not writable ({error.strerror}); set RAG_DATA_DIR")
    return ConfigError(f"cannot use data dir {data_dir}: {error.strerror}")


def _lock_file(settings: Settings, kind: str) -> Path:
    """`<data dir>/locks/<collection>.<kind>` (collection names are checked: letters, digits, `.`, `_`, `-`)."""
    return settings.data_dir / "locks" / f"{settings.collection}.{kind}"


@contextlib.contextmanager
def locked(settings: Settings, exclusive: bool, wait: float = 10.0) -> Iterator[None]:
    """Short writes to a collection exclude its readers; readers share. Two processes opening one
    persistent Chroma folder while one writes to the same collection is unsafe upstream, so no
    search of it runs during a write. The locks are per collection: an ingest into one never
    holds up searches of another. An ingest holds this only for each write (a batch of vectors and
    its catalog commit, the BM25 swap), never while it embeds, so searches go on between its writes.

    A writer first takes the gate, which new readers pass through: once a writer waits, readers
    that arrive after it queue behind it instead of starving it."""
    data_dir = settings.data_dir
    if not exclusive and not data_dir.is_dir():  # a reader has nothing to read: leave no dir behind
        raise IndexMissing(f"no index in {data_dir}; run `rag ingest` first")
    deadline = time.monotonic() + wait
    what = "another process is writing to" if exclusive else "an ingest is writing to"
    busy = f"{what} the index in {data_dir} (collection {settings.collection!r}); try again when it finishes"
    fds: list[int] = []
    try:
        try:
            if exclusive:
                (data_dir / "locks").mkdir(parents=True, exist_ok=True)
            gate = _open_lock(_lock_file(settings, "gate"), create=exclusive)
            fds += [gate] if gate is not None else []
            lock = _open_lock(_lock_file(settings, "lock"), create=exclusive)
            fds += [lock] if lock is not None else []
        except OSError as e:
            raise unusable(data_dir, e) from None
        if gate is not None:
            _flock(gate, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline, busy, None)
        if lock is not None:
            _flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline, busy, None)
        if gate is not None and not exclusive:
            fcntl.flock(gate, fcntl.LOCK_UN)  # a reader only passes through the gate
        yield
    finally:
        for fd in fds:
            os.close(fd)


@contextlib.contextmanager
def writing(settings: Settings, wait: float = 10.0, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """One ingest (or `rag doctor`) of a collection at a time, held for its whole run. Readers never
    take it: they wait only for `locked(exclusive=True)`, which a writer holds for each short write."""
    data_dir = settings.data_dir
    try:
        (data_dir / "locks").mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_file(settings, "ingest"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise unusable(data_dir, e) from None
    try:
        _flock(fd, fcntl.LOCK_EX, time.monotonic() + wait, f"another ingest is writing to the index in {data_dir} "
               f"(collection {settings.collection!r}); try again when it finishes", on_wait)
        yield
    finally:
        os.close(fd)


# --- generations: `rag ingest --rebuild` builds a new one beside the live one and switches --------
def generation_name(collection: str, n: int) -> str:
    """Generation 0 is the collection's own name (an index never rebuilt); the rest are staged."""
    return collection if n == 0 else f"{collection}{STAGING_SUFFIX}{n}"


def generation_number(collection: str, name: str) -> int | None:
    """`name`'s generation if it is one of `collection`'s, else None."""
    if name == collection:
        return 0
    tail = name.removeprefix(collection + STAGING_SUFFIX)
    return int(tail) if tail != name and tail.isdigit() else None


def live_name(settings: Settings) -> str:
    """The generation searches use: what `<collection>.live` names, or the collection itself.
    Its directory under the data dir and its Chroma collection carry this name."""
    pointer = settings.data_dir / (settings.collection + LIVE_SUFFIX)
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return settings.collection
    except OSError as e:
        raise IndexDamaged(f"{pointer} is unreadable ({e.strerror}); it names the live index; "
                           "re-index with `rag ingest --rebuild PATH ...`") from None
    if generation_number(settings.collection, name) is None:
        raise IndexDamaged(f"{pointer} is damaged (it should name a generation of {settings.collection!r}); "
                           "re-index with `rag ingest --rebuild PATH ...`")
    return name


def live_root(settings: Settings) -> Path:
    return settings.data_dir / live_name(settings)


def next_generation(previous: int) -> int:
    """Generations are microseconds of wall-clock time, kept increasing: writers on several machines
    stamp their chunks with them, and a node that follows them re-reads a margin behind its last
    (`rag.cache.SKEW`), so writes that overlap, or clocks a little apart, are not missed."""
    return max(previous + 1, time.time_ns() // 1000)


def server_live(settings: Settings) -> str | None:
    """With a Chroma server, the live generation as the server records it (in the metadata of the
    anchor collection `<collection>.live`), for every node; None without a server or a record."""
    if not settings.chroma_url:
        return None
    from chromadb.errors import NotFoundError

    store = VectorStore(settings, settings.collection + LIVE_SUFFIX)
    try:
        with store.errors():
            meta = store.client().get_collection(store.name, embedding_function=None).metadata or {}
    except NotFoundError:
        return None
    finally:
        store.close()
    name = meta.get("rag_live")
    return name if isinstance(name, str) and generation_number(settings.collection, name) is not None else None


def switch_live(settings: Settings, name: str, anchor: bool = True) -> None:
    """Make `name` the live generation in one atomic step: a new pointer file renamed over the old.
    A process killed before the rename leaves the old index live, after it the new one. With a
    server, its anchor collection is switched first: it is what the other nodes follow."""
    if settings.chroma_url and anchor:   # (not when a node follows what the server's anchor names)
        store = VectorStore(settings, settings.collection + LIVE_SUFFIX)
        try:
            collection = store.collection(create=True)
            with store.errors():
                collection.modify(metadata={"rag_live": name})
        finally:
            store.close()
    pointer = settings.data_dir / (settings.collection + LIVE_SUFFIX)
    tmp = pointer.with_name(pointer.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, pointer)
    dir_fd = os.open(settings.data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself reaches the disk before the old index is deleted
    finally:
        os.close(dir_fd)


def _parts(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    """`ids` in slices SQLite takes as the parameters of one `in (...)`."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


class Catalog:
    """SQLite table of papers and ingested files, plus the manifest."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.is_file() and not writable(path.parent):
                # A read-only copy or mount: nothing can change it, so SQLite need not look for writers.
                self.db = sqlite3.connect(path.absolute().as_uri() + "?immutable=1", uri=True,
                                          check_same_thread=False)
            else:
                # Threads of one process (the UI's workers) share it; Retriever serialises the use.
                self.db = sqlite3.connect(path, check_same_thread=False)
                self.db.executescript(SCHEMA)
                if "meta" not in {row[1] for row in self.db.execute("pragma table_info(papers)")}:
                    self.db.execute("alter table papers add column meta text")  # a catalog from before metadata
            self._inode = os.stat(path).st_ino
        except sqlite3.DatabaseError as e:
            raise IndexDamaged(f"the index catalog {path} is unreadable ({e}); re-index with "
                               "`rag ingest --rebuild PATH ...`") from None

    def close(self) -> None:
        self.db.close()

    def replaced(self) -> bool:
        """Another file now sits at our path (`rag ingest --rebuild` swapped a new index in)."""
        try:
            return os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            return True

    def manifest(self) -> Manifest | None:
        row = self.db.execute("select value from meta where key='manifest'").fetchone()
        try:
            return Manifest(**json.loads(row[0])) if row else None
        except (ValueError, TypeError) as e:
            raise IndexDamaged(f"the manifest in {self.path} is unreadable ({e}); it records which model built "
                               "the index, so re-index: `rag ingest --rebuild PATH ...`") from None

    def set_manifest(self, manifest: Manifest) -> None:
        self.db.execute("insert or replace into meta values ('manifest', ?)", (json.dumps(manifest.__dict__),))
        self.db.commit()

    def generation(self) -> int:
        """Bumped by every ingest that changed something: a long-lived reader (the UI) compares
        it to notice an ingest from another process and reopen what it cached."""
        row = self.db.execute("select value from meta where key='generation'").fetchone()
        return int(row[0]) if row else 0

    def bump_generation(self) -> None:
        self.db.execute("insert or replace into meta values ('generation', ?)", (str(self.generation() + 1),))
        self.db.commit()

    def synced(self) -> int:
        """The vector store's generation this catalog last caught up with (0: never)."""
        row = self.db.execute("select value from meta where key='synced'").fetchone()
        return int(row[0]) if row else 0

    def set_synced(self, generation: int) -> None:
        self.db.execute("insert or replace into meta values ('synced', ?)", (str(generation),))
        self.db.commit()

    def hashes(self, ids: list[str] | None = None) -> dict[str, str]:
        """{paper id: content hash} of every paper, or of those of `ids` that are indexed."""
        if ids is None:
            return dict(self.db.execute("select paper_id, content_hash from papers"))
        return {pid: h for part in _parts(ids) for pid, h in self.db.execute(
            f"select paper_id, content_hash from papers where paper_id in ({','.join('?' * len(part))})", part)}

    def digest(self) -> str:
        """Changes whenever a paper is added, removed or changed."""
        import hashlib

        h = hashlib.sha1()
        for pid, content in self.db.execute("select paper_id, content_hash from papers order by paper_id"):
            h.update(f"{pid}:{content}\n".encode())
        return h.hexdigest()

    def add(self, papers: list[Paper], chunk_counts: dict[str, int]) -> None:
        self.db.executemany(
            "insert or replace into papers (paper_id, title, abstract, source, authors, date, chunks, content_hash, "
            "meta) values (?,?,?,?,?,?,?,?,?)",
            [(p.paper_id, p.title, p.abstract, p.source, p.authors, p.date, chunk_counts[p.paper_id],
              content_hash(p), json.dumps(p.meta, ensure_ascii=False) if p.meta else None) for p in papers])
        self.db.commit()

    def set_meta(self, papers: list[Paper]) -> dict[str, int]:
        """Metadata of papers already indexed: a richer export of the same paper needs no embedding.
        Returns {paper id: chunks} of those whose metadata changed."""
        wanted = {p.paper_id: json.dumps(p.meta, ensure_ascii=False) if p.meta else None for p in papers}
        changed = {}
        for part in _parts(list(wanted)):
            for pid, meta, chunks in self.db.execute(
                    f"select paper_id, meta, chunks from papers where paper_id in ({','.join('?' * len(part))})",
                    part):
                if meta != wanted[pid]:
                    changed[pid] = chunks
        self.db.executemany("update papers set meta = ? where paper_id = ?", [(wanted[p], p) for p in changed])
        self.db.commit()
        return changed

    def identified(self, keys: set[str]) -> dict[str, tuple[str, str]]:
        """{DOI/arXiv/PMID key: (paper id, title)} of the papers indexed under any of `keys`, for merging a
        paper that comes back from another export (Zotero, then the arXiv snapshot) into the one already
        here. One pass over the table, keeping only the hits: memory stays that of `keys`."""
        out: dict[str, tuple[str, str]] = {}
        for pid, title, doi, arxiv, pmid in self.db.execute(
                "select paper_id, title, json_extract(meta, '$.doi'), json_extract(meta, '$.ids.arxiv'), "
                "json_extract(meta, '$.ids.pmid') from papers where meta is not null"):
            for key in identifiers({"doi": doi, "ids": {"arxiv": arxiv, "pmid": pmid}}):
                if key in keys:
                    out.setdefault(key, (pid, title))
        return out

    def remove(self, paper_ids: list[str]) -> None:
        self.db.executemany("delete from papers where paper_id = ?", [(pid,) for pid in paper_ids])
        self.db.commit()

    def from_files(self, paths: list[Path]) -> dict[str, str]:
        """{paper id: source} of the papers first read from any of `paths` (as given or resolved)."""
        wanted = {str(p) for p in paths} | {str(p.resolve()) for p in paths}
        return {pid: src for pid, src in self.db.execute("select paper_id, source from papers")
                if src in wanted or str(Path(src).resolve()) in wanted}

    def forget_files(self, paths: list[Path]) -> None:
        self.db.executemany("delete from files where path = ?", [(str(p.resolve()),) for p in paths])
        self.db.commit()

    def record_files(self, files: dict[str, int]) -> None:
        rows = []
        for path, count in files.items():
            st = Path(path).stat()
            rows.append((str(Path(path).resolve()), st.st_size, st.st_mtime_ns, count))
        self.db.executemany("insert or replace into files values (?,?,?,?)", rows)
        self.db.commit()

    def papers(self, ids: list[str]) -> dict[str, Paper]:
        out: dict[str, Paper] = {}
        for part in _parts(ids):
            marks = ",".join("?" * len(part))
            for row in self.db.execute(
                    f"select paper_id, title, abstract, source, authors, date, meta from papers "
                    f"where paper_id in ({marks})", part):
                out[row[0]] = Paper(*row[:6], meta=json.loads(row[6]) if row[6] else {})
        return out

    def all_papers(self) -> Iterator[tuple[str, str, str]]:
        yield from self.db.execute("select paper_id, title, abstract from papers order by rowid")

    def counts(self) -> dict[str, int]:
        papers, chunks = self.db.execute("select count(*), coalesce(sum(chunks), 0) from papers").fetchone()
        files = self.db.execute("select count(*) from files").fetchone()[0]
        return {"papers": papers, "chunks": chunks, "files": files}

    def files(self) -> list[dict]:
        return [{"path": p, "papers": n} for p, n in self.db.execute("select path, papers from files order by path")]


BM25_BATCH = 20_000   # papers tokenized at a time while the keyword index is built


def _write_bm25(rows: Iterable[tuple[str, str, str]], tokenize: Callable[[list[str]], list[list[str]]],
                out: Path, k1: float, b: float) -> None:
    """The files bm25s saves (its Lucene BM25: the same scores, to float32 rounding), written a batch of
    papers at a time so that memory stays that of one batch, the vocabulary and the per-term counts: the
    arXiv snapshot's 2.7M abstracts would hold several GB in bm25s's own `index`. Pass one tokenizes and
    spools each paper's (term, count) pairs to disk; pass two scores them and places them, column by
    column, into memory-mapped CSC arrays whose pages are handed back to the OS after each batch."""
    import mmap

    import numpy as np

    vocab: dict[str, int] = {}
    df = np.zeros(1024, np.int64)
    lengths: list[np.ndarray] = []   # terms a paper has, stopwords dropped (int32: 4 bytes a paper)
    sizes: list[int] = []            # (term, count) pairs each batch spooled
    ids = (out / "ids.json").open("w")
    spool = (out / "spool.bin").open("w+b")
    ids.write("[")
    n_docs = 0
    for batch in _batches(rows, BM25_BATCH):
        ids.write(("," if n_docs else "") + ",".join(json.dumps(pid) for pid, _, _ in batch))
        docs = tokenize([f"{title}\n{abstract}" for _, title, abstract in batch])
        terms = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in docs for t in doc), np.int32)
        doc_len = np.fromiter((len(doc) for doc in docs), np.int32, len(docs))
        row = np.repeat(np.arange(n_docs, n_docs + len(docs), dtype=np.int64), doc_len)
        # one (paper, term) pair each, with its count: unique over paper * |V| + term
        pairs, counts = np.unique(row * (1 << 32) + terms, return_counts=True)
        doc_of, term_of = (pairs >> 32).astype(np.int32), (pairs & 0xFFFFFFFF).astype(np.int32)
        if len(vocab) > len(df):
            df = np.concatenate([df, np.zeros(max(len(vocab), 2 * len(df)) - len(df), np.int64)])
        df += np.bincount(term_of, minlength=len(df))
        for array in (doc_of, term_of, counts.astype(np.int32)):
            spool.write(array.tobytes())
        sizes.append(len(pairs))
        lengths.append(doc_len)
        n_docs += len(docs)
    ids.write("]")
    ids.close()
    if not n_docs:
        spool.close()
        (out / "spool.bin").unlink()
        return
    vocab.setdefault("", len(vocab))   # as bm25s adds it: a column no paper has
    df = np.concatenate([df, np.zeros(max(0, len(vocab) - len(df)), np.int64)])[:len(vocab)]
    doc_len = np.concatenate(lengths)
    avg_len = float(doc_len.mean())
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    indptr = np.zeros(len(vocab) + 1, np.int64)
    np.cumsum(df, out=indptr[1:])
    nnz = int(indptr[-1])
    data = np.lib.format.open_memmap(out / "data.csc.index.npy", "w+", np.float32, (max(nnz, 1),))[:nnz]
    indices = np.lib.format.open_memmap(out / "indices.csc.index.npy", "w+", np.int32, (max(nnz, 1),))[:nnz]
    cursor = indptr[:-1].copy()
    spool.seek(0)
    for size in sizes:
        doc_of, term_of, tf = (np.frombuffer(spool.read(4 * size), np.int32) for _ in range(3))
        tf = tf.astype(np.float32)
        # bm25s: idf (float32) * tf / (k1 * (1 - b + b * len / avg) + tf), in float64, stored as float32
        score = idf[term_of] * (tf / (k1 * ((1 - b) + b * doc_len[doc_of] / avg_len) + tf))
        order = np.argsort(term_of, kind="stable")   # papers stay ascending within each term's column
        terms, starts, counts = np.unique(term_of[order], return_index=True, return_counts=True)
        at = np.repeat(cursor[terms] - starts, counts) + np.arange(size)
        data[at] = score[order]
        indices[at] = doc_of[order]
        cursor[terms] += counts
        for array in (data, indices):
            array.base.flush()
            if hasattr(mmap, "MADV_DONTNEED"):   # written back: the pages need not stay in this process
                array.base._mmap.madvise(mmap.MADV_DONTNEED)
    spool.close()
    (out / "spool.bin").unlink()
    del data, indices
    np.save(out / "indptr.csc.index.npy", indptr)
    (out / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False))
    import bm25s

    (out / "params.index.json").write_text(json.dumps({
        "k1": k1, "b": b, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
        "int_dtype": "int32", "num_docs": n_docs, "version": bm25s.__version__, "backend": "numpy"}, indent=4))


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")


def _split_cjk(text: str) -> str:
    """Chinese/Japanese/Korean have no spaces: a run such as '本文介绍了GACT' would be one token
    and 'gact' never a term of its own. Runs become overlapping character bigrams, set apart."""
    def bigrams(match: re.Match) -> str:
        run = match.group(0)
        return " " + " ".join(run[i:i + 2] for i in range(max(1, len(run) - 1))) + " "

    return _CJK_RUN.sub(bigrams, text)


class BM25Index:
    """bm25s over each paper's title + abstract, English stopwords, Snowball stemming."""

    K1, B = 1.2, 0.75  # tuned on SciFact train claims (evals/tune_scifact.py)
    FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "params.index.json",
             "vocab.index.json")  # what bm25s saves
    VERSION = "3"  # bump when tokenization or parameters change: ingest then rebuilds from the catalog

    def __init__(self, directory: Path):
        self.directory = directory
        self._retriever = None
        self._ids: list[str] = []

    @staticmethod
    def _stemmer():
        import Stemmer

        return Stemmer.Stemmer("english").stemWords

    def build(self, rows: Iterable[tuple[str, str, str]], built_from: str = "",
              swap: contextlib.AbstractContextManager = contextlib.nullcontext()) -> None:
        """Index `rows` (paper id, title, abstract), read once, in order; `built_from` (the catalog's
        digest) is kept so that `needs_build` knows when the catalog has moved on without it. Built beside
        the live index, then renamed in under `swap` (an ingest's write lock): searches go on meanwhile."""
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _write_bm25(rows, self.tokenize, tmp, self.K1, self.B)
        (tmp / "version").write_text(self.VERSION)
        (tmp / "built_from").write_text(built_from)
        old = self._old
        with swap:
            if self.directory.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.directory, old)
            # A process killed here leaves only the old index: `files` reads it until the next build.
            os.replace(tmp, self.directory)
        shutil.rmtree(old, ignore_errors=True)
        self.forget()

    @property
    def _old(self) -> Path:
        return self.directory.with_name(self.directory.name + ".old")

    @property
    def files(self) -> Path:
        """Where the index's files are: its directory, or the previous build's while a swap is
        half done (a kill between its two renames)."""
        return self._old if not self.directory.exists() and self._old.exists() else self.directory

    def forget(self) -> None:
        self._retriever = None

    def damage(self) -> str | None:
        """What is wrong with the files on disk, or None when they are whole."""
        try:
            ids = json.loads((self.files / "ids.json").read_text())
        except FileNotFoundError:
            return "ids.json is missing"
        except (OSError, ValueError):
            return "ids.json is unreadable"
        missing = [name for name in self.FILES if not (self.files / name).is_file()]
        return f"{missing[0]} is missing" if ids and missing else None

    def needs_build(self, catalog_digest: str) -> bool:
        """Damaged, built by another version, or from another state of the catalog: an ingest
        killed after its last catalog commit but before this rebuild left it behind."""
        try:
            return (self.damage() is not None or (self.files / "version").read_text() != self.VERSION
                    or (self.files / "built_from").read_text() != catalog_digest)
        except OSError:
            return True

    def _load(self) -> bool:
        if self._retriever is None:
            why = self.damage()
            if why:  # never quietly search without it: hybrid would become dense-only unseen
                raise IndexDamaged(f"the keyword index in {self.files} is damaged ({why}); "
                                   "`rag doctor` rebuilds it from the catalog")
            self._ids = json.loads((self.files / "ids.json").read_text())
            if not self._ids:
                return False
            import bm25s

            try:
                self._retriever = bm25s.BM25.load(str(self.files), mmap=True, show_progress=False)
            except (OSError, ValueError, KeyError) as e:
                raise IndexDamaged(f"the keyword index in {self.files} is unreadable ({e}); "
                                   "`rag doctor` rebuilds it from the catalog") from None
        return True

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Each text's terms as this index sees them: stemmed, English stopwords dropped."""
        import bm25s

        return bm25s.tokenize([_split_cjk(t) for t in texts], stopwords="en", stemmer=self._stemmer(),
                              return_ids=False, show_progress=False)

    def doc_freqs(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """(papers indexed, how many of them contain each term); 0 for a term no paper has."""
        if not self._load():
            return 0, dict.fromkeys(terms, 0)
        indptr = self._retriever.scores["indptr"]
        vocab = self._retriever.vocab_dict
        freqs = {t: int(indptr[vocab[t] + 1] - indptr[vocab[t]]) if t in vocab else 0 for t in terms}
        return int(self._retriever.scores["num_docs"]), freqs

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        if not self._load():
            return []
        import numpy as np

        tokens = self.tokenize([query])[0]
        token_ids = self._retriever.get_tokens_ids(tokens)
        if not token_ids:
            return []
        scores = self._retriever.get_scores_from_ids(token_ids)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]


# Chroma (1.5) raises InternalError with no errno for everything: what it means is in the message.
_CHROMA_FULL = ("database or disk is full", "(code: 13)", "no space left", "os error 28")
_CHROMA_DAMAGED = ("malformed", "not a database", "hnsw segment reader", "error loading hnsw index",
                   "deserializing pickle", "error finding id")
_READ_ONLY_COPIES: dict[Path, Path] = {}


def free_mb(path: Path) -> float:
    """Free space on the file system holding `path` (or its nearest existing parent), in MB."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 1e6


def disk_full(path: Path, needed_mb: float | None = None) -> DiskFull:
    needed = f", about {needed_mb:,.0f} MB needed" if needed_mb else ""
    return DiskFull(f"the disk holding {path} is full: {free_mb(path):,.0f} MB free{needed}; nothing was "
                    "written. Free some space (or set RAG_DATA_DIR elsewhere) and run the same command again")


def is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = str(error).lower()
    return (isinstance(error, sqlite3.OperationalError) and "disk is full" in text) or any(
        f in text for f in _CHROMA_FULL)


def writable(path: Path) -> bool:
    """Whether this process may write at `path` (a read-only mount says no, even to root)."""
    return os.access(path, os.W_OK) and not os.statvfs(path).f_flag & os.ST_RDONLY


class VectorStore:
    """Chunk vectors in Chroma, embedded on disk or on a Chroma server, one code path."""

    def __init__(self, settings: Settings, name: str | None = None):
        self.settings = settings
        self.name = name or settings.collection  # the Chroma collection: the index generation's name
        self._client = None
        self._collection = None

    @property
    def where(self) -> str:
        return display_url(self.settings.chroma_url) if self.settings.chroma_url else str(self.path)

    @property
    def path(self) -> Path:
        return self.settings.data_dir / "chroma"

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Chroma's failures as one clear line: a full disk, a damaged store, anything else."""
        from chromadb.errors import ChromaError, NotFoundError

        try:
            yield
        except NotFoundError:
            raise
        except ChromaError as e:
            text = str(e)
            if is_disk_full(e) or ("error in compaction" in text.lower()
                                   and not self.settings.chroma_url and free_mb(self.path) < self.settings.min_free_mb):
                raise disk_full(self.path) from None
            if any(f in text.lower() for f in _CHROMA_DAMAGED):
                raise IndexDamaged(f"the vector store in {self.where} is damaged ({text.strip()[:200]}); "
                                   "re-index with `rag ingest --rebuild PATH ...`") from None
            raise RagError(f"the vector store in {self.where} failed: {text.strip()[:300]}") from None

    def _read_only_copy(self) -> Path:
        """Chroma writes to its folder even to read it (chromadb 1.5 records a tenant on open, and
        applies its log): a read-only index is searched through a private copy, made once a process."""
        if self.path not in _READ_ONLY_COPIES:
            import atexit
            import tempfile

            tmp = Path(tempfile.mkdtemp(prefix="rag-readonly-"))
            shutil.copytree(self.path, tmp / "chroma")
            atexit.register(shutil.rmtree, tmp, True)
            _READ_ONLY_COPIES[self.path] = tmp / "chroma"
        return _READ_ONLY_COPIES[self.path]

    def client(self):
        """This store's Chroma client, opened on first use and kept until `close`."""
        if self._client is None:
            self._client = self._open_client()
        return self._client

    def close(self) -> None:
        """Close the client. Chroma shares one engine among a process's clients of a folder and stops
        it (freeing its memory) when the last is closed; only a new engine reads what other
        processes wrote since, so a reader that wants their writes closes and reopens."""
        self._collection = None
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _open_client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        url = self.settings.chroma_url
        if url:
            from urllib.parse import urlparse

            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"RAG_CHROMA_URL must look like http://host:port, got {display_url(url)!r}")
            try:
                return chromadb.HttpClient(host=parsed.hostname, port=parsed.port or 8000,
                                           ssl=parsed.scheme == "https", settings=chroma_settings)
            except ValueError as e:  # chromadb turns connection errors into ValueError
                raise ConfigError(f"cannot reach the Chroma server at {display_url(url)}: {e}") from None
        path = self.path
        if path.is_dir() and not writable(path):
            path = self._read_only_copy()
        with self.errors():
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)

    def collection(self, create: bool):
        if self._collection is None:
            from chromadb.errors import NotFoundError

            client = self.client()
            name = self.name
            with self.errors():
                if create:
                    self._collection = client.get_or_create_collection(
                        name, configuration=_CHROMA_SPACE, embedding_function=None)
                else:
                    try:
                        self._collection = client.get_collection(name, embedding_function=None)
                    except NotFoundError as e:
                        raise IndexMissing(f"collection {name!r} is not in the vector store {self.where}; "
                                           "run `rag ingest` (or, if it was indexed before, `rag ingest "
                                           "--rebuild PATH ...`)") from e
        return self._collection

    def upsert(self, chunks: list[Chunk], vectors: np.ndarray, papers: dict[str, Paper], generation: int = 0) -> None:
        collection = self.collection(create=True)
        counts: dict[str, int] = {}
        for c in chunks:
            counts[c.paper_id] = counts.get(c.paper_id, 0) + 1
        # A chunk whose text is its paper's title and a span of its abstract is stored without it (the catalog
        # has both): Chroma indexes every document for full-text search, which rag never uses, and that
        # halves the upsert rate (evals/ingest_scale.py). The few others (a cut title) keep their text.
        for part, documents in ((i for i, c in enumerate(chunks) if c.span), False), \
                               ((i for i, c in enumerate(chunks) if not c.span), True):
            rows = list(part)
            if not rows:
                continue
            metadatas = []
            for i in rows:
                c = chunks[i]
                metadatas.append(chunk_metadata(papers[c.paper_id], c.n, counts[c.paper_id], generation))
                if c.span:
                    metadatas[-1] |= {"start": c.span[0], "end": c.span[1]}
            with self.errors():
                collection.upsert(ids=[chunks[i].chunk_id for i in rows], embeddings=vectors[rows],
                                  metadatas=metadatas, **({"documents": [chunks[i].text for i in rows]}
                                                          if documents else {}))

    def set_meta(self, papers: list[Paper], chunk_counts: dict[str, int], generation: int = 0) -> None:
        """New bibliographic metadata for papers whose vectors stay as they are."""
        ids, metadatas = [], []
        for p in papers:
            for n in range(chunk_counts.get(p.paper_id, 0)):
                ids.append(f"{p.paper_id}:{n}")
                metadatas.append(chunk_metadata(p, n, chunk_counts[p.paper_id], generation))
        if ids:
            collection = self.collection(create=True)
            with self.errors():
                collection.update(ids=ids, metadatas=metadatas)

    def delete_papers(self, paper_ids: list[str]) -> None:
        if paper_ids:
            collection = self.collection(create=True)
            with self.errors():
                collection.delete(where={"paper_id": {"$in": paper_ids}})

    def count(self) -> int:
        collection = self.collection(create=False)
        with self.errors():
            return collection.count()

    def paper_ids(self) -> set[str]:
        """Every paper that has vectors here, paged so a large collection is not read at once."""
        collection, found, offset = self.collection(create=False), set(), 0
        with self.errors():
            while True:
                got = collection.get(include=[], limit=5000, offset=offset)   # ids are "<paper id>:<n>"
                found.update(cid.rsplit(":", 1)[0] for cid in got["ids"])
                if len(got["ids"]) < 5000:
                    return found
                offset += 5000

    def state(self) -> tuple[Manifest | None, int]:
        """(manifest, generation) as the collection's own metadata records them: what the caches of
        every node follow. (None, 0) for a collection written before they were recorded."""
        from chromadb.errors import NotFoundError

        with self.errors():
            try:
                meta = self.client().get_collection(self.name, embedding_function=None).metadata or {}
            except NotFoundError as e:
                raise IndexMissing(f"collection {self.name!r} is not in the vector store {self.where}; "
                                   "run `rag ingest` first") from e
        try:
            manifest = Manifest(**json.loads(meta["rag_manifest"])) if "rag_manifest" in meta else None
        except (ValueError, TypeError) as e:
            raise IndexDamaged(f"the manifest of collection {self.name!r} in {self.where} is unreadable ({e}); "
                               "re-index with `rag ingest --rebuild PATH ...`") from None
        return manifest, int(meta.get("rag_generation", 0))

    def mark(self, manifest: Manifest, generation: int) -> None:
        """Record the manifest and a new generation in the collection's metadata: other nodes follow it.
        Never backwards: a slower writer's older generation does not hide a newer one."""
        collection = self.collection(create=True)
        _, current = self.state()
        with self.errors():
            collection.modify(metadata={"rag_manifest": json.dumps(manifest.__dict__),
                                        "rag_generation": max(generation, current)})

    def rows(self, since: int | None = None) -> Iterator[tuple[str, dict]]:
        """(chunk id, metadata) of every chunk, or of those a write after generation `since` stored,
        paged so a large collection is never read at once."""
        collection, offset = self.collection(create=False), 0
        where = {"g": {"$gt": since}} if since is not None else None
        while True:
            with self.errors():
                got = collection.get(where=where, include=["metadatas"], limit=5000, offset=offset)
            yield from zip(got["ids"], got["metadatas"])
            if len(got["ids"]) < 5000:
                return
            offset += 5000

    def search(self, vector: np.ndarray, n: int) -> list[tuple[str, str, float]]:
        """(chunk_id, paper_id, cosine similarity) best first. Distances only: fetching metadata
        and documents for hundreds of candidates costs several times the search itself."""
        collection = self.collection(create=False)
        with self.errors():
            total = collection.count()
            if total == 0:
                return []
            result = collection.query(query_embeddings=[vector], n_results=min(n, total), include=["distances"])
        return [(cid, cid.rsplit(":", 1)[0], 1.0 - float(dist))
                for cid, dist in zip(result["ids"][0], result["distances"][0])]

    def texts(self, chunk_ids: list[str], papers: dict[str, Paper]) -> dict[str, str]:
        """Each chunk's text: stored, or rebuilt from its paper in `papers` (title + its span of the
        abstract)."""
        if not chunk_ids:
            return {}
        collection = self.collection(create=False)
        with self.errors():
            got = collection.get(ids=chunk_ids, include=["documents", "metadatas"])
        out = {}
        for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
            paper = papers.get(cid.rsplit(":", 1)[0])
            if text is None and paper and meta and "start" in meta:
                text = (f"{paper.title}\n" if paper.title else "") + paper.abstract[meta["start"]:meta["end"]]
            if text is not None:
                out[cid] = text
        return out


def chunk_metadata(paper: Paper, n: int, chunks: int, generation: int) -> dict:
    """What Chroma keeps beside a chunk's vector: the paper's metadata, so a Chroma server's users (and
    its `where` filters) see names, year and DOI; the first chunk also carries the rest of the catalog
    row, so another node rebuilds its catalog from the server (`rag.cache`). `g`: the write's generation."""
    out: dict = {"paper_id": paper.paper_id, "n": n, "title": paper.title, "g": generation}
    m = paper.meta
    out |= {k: v for k, v in [("year", m.get("year")), ("doi", m.get("doi")), ("venue", m.get("venue")),
                              ("authors", "; ".join(m.get("authors", [])))] if v}
    if m:
        out["meta"] = json.dumps(m, ensure_ascii=False)
    if n == 0:
        out |= {"abstract": paper.abstract, "source": paper.source, "chunks": chunks}
        out |= {k: v for k, v in [("date", paper.date), ("n_authors", paper.authors)] if v is not None}
    return out


class Index:
    """One collection: catalog + vectors + BM25 + manifest, of its live generation unless `name`
    says which (a rebuild's staged one)."""

    def __init__(self, settings: Settings, name: str | None = None):
        self.settings = settings
        self.name = name or live_name(settings)
        self.root = settings.data_dir / self.name
        self.catalog = Catalog(self.root / "catalog.sqlite")
        self.vectors = VectorStore(settings, self.name)
        self.bm25 = BM25Index(self.root / "bm25")
        self.embedder = None  # set by check_model: the embedder the index was checked against

    @classmethod
    def open_for_query(cls, settings: Settings) -> Index:
        if not (live_root(settings) / "catalog.sqlite").is_file():
            raise IndexMissing(f"no index in {settings.data_dir} (collection {settings.collection!r}); "
                               "run `rag ingest` first")
        index = cls(settings)
        index.check_model()
        return index

    def close(self) -> None:
        self.catalog.close()
        self.vectors.close()

    def replaced(self) -> bool:
        """A rebuild has switched the collection to another generation since this was opened."""
        return live_name(self.settings) != self.name or self.catalog.replaced()

    def check_model(self) -> Manifest:
        from rag.embedding import for_index, load_embedder

        manifest = self.catalog.manifest()
        if manifest is None:
            raise IndexMissing(f"the index in {self.root} is empty; run `rag ingest` first")
        # The model asked for, at the precision that built the index: its queries need the same encoder.
        self.embedder = asked = for_index(load_embedder(self.settings), manifest.model_fingerprint)
        if asked.fingerprint != manifest.model_fingerprint:
            raise ModelMismatch(
                f"the index in {self.root} was built with {manifest.embed_model} "
                f"({manifest.model_fingerprint}) but the embedding model is now {asked.name} "
                f"({asked.fingerprint}); use the same model, or ingest into another data dir or collection")
        return manifest

    def models_dir(self, manifest: Manifest) -> Path:
        """Where the embedder keeps what queries need (the ONNX export), shared by collections."""
        return self.settings.data_dir / "models" / manifest.model_fingerprint


def status(settings: Settings, titles: int = 0) -> dict:
    """What `rag status` and the UI's header show, read from the catalog alone (no Chroma, no model)."""
    chroma = display_url(settings.chroma_url) if settings.chroma_url else str(settings.data_dir / "chroma")
    info: dict = {"data_dir": str(settings.data_dir), "collection": settings.collection, "chroma": chroma,
                  "embed_model": None, "papers": 0, "chunks": 0, "files": [], "titles": []}
    path = live_root(settings) / "catalog.sqlite"
    if not path.is_file():
        return info
    catalog = Catalog(path)
    try:
        info.update(catalog.counts())
        info["files"] = catalog.files()
        manifest = catalog.manifest()
        if manifest:
            info.update(embed_model=manifest.embed_model, model_fingerprint=manifest.model_fingerprint,
                        chunk_tokens=manifest.chunk_tokens)
        if titles:
            info["titles"] = [t for (t,) in catalog.db.execute(
                "select title from papers where title != '' order by rowid limit ?", (titles,))]
    finally:
        catalog.close()
    return info
