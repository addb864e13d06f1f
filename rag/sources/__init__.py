"""Sources → Paper: find the files, hand each to its parser, merge duplicates into unique papers.

Nothing is silently dropped: every block or record that cannot be turned into a
paper is returned as a `Rejected` with its file, location and reason.

One parser a format, beside this module: `pages` (the seed text pages), `records` (JSON lines, JSON
documents such as CSL-JSON and API responses, CSV/TSV, BEIR), `bibtex` (bibtexparser), `ris` (rispy),
`pubmed` (MEDLINE, efetch XML), `wos` (Web of Science) and `zotero` (Zotero's own database).
The format is chosen by suffix and, where that leaves it open, by content (`_sniff`). What the parsers
yield, `_Rec` and `Rejected`, is in `parsed`, which imports none of them, so there is no import cycle;
`Rejected`, `split_title` and the identity helpers
(`identifiers`, `same_work`, `merge_meta`) are re-exported here, the package's one entry point for sources.
"""
from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.sources import bibtex, pubmed, ris, wos, zotero
from rag.sources.pages import _parse_page, split_title
from rag.sources.parsed import Rejected, _digest, _norm, _not_utf8, _Rec, identifiers, junk, merge_meta, same_work
from rag.sources.records import _csv_rows, _json_document, _json_rows, _records

__all__ = ["DEFAULT_MAX_BYTES", "FILE_TYPES", "LoadResult", "Paper", "Rejected", "content_id", "identifiers", "load",
           "merge_meta", "same_work", "split_title", "walk"]


@dataclass(frozen=True)
class Paper:
    paper_id: str          # stable: from the content (or the record's own id, e.g. BEIR `_id`)
    title: str             # "" when the source has none (003 layout)
    abstract: str
    source: str            # file the paper was first read from
    authors: int | None = None
    date: str | None = None    # ISO YYYY-MM-DD where the page gives one
    # Bibliographic metadata, where the format has it (rag.sources.parsed.meta): authors (names),
    # year, venue, doi, url, ids, keywords. Not part of the content hash: it can change without re-embedding.
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class LoadResult:
    papers: list[Paper] = field(default_factory=list)     # unique papers, first occurrence wins (merged)
    rejected: list[Rejected] = field(default_factory=list)
    files: list[str] = field(default_factory=list)        # files that yielded at least one paper
    duplicates: int = 0                                     # records merged into an earlier paper


DEFAULT_MAX_BYTES = 200 * 2**20   # for text pages, which are read whole; JSONL and CSV stream
_KINDS = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "page",
          ".md": "page", "": "page", ".bib": "bibtex", ".bibtex": "bibtex", ".ris": "ris", ".nbib": "medline",
          ".xml": "pubmed-xml", ".sqlite": "zotero"}
FILE_TYPES = [suffix for suffix in _KINDS if suffix]  # what a file chooser offers
# Formats read whole, as text, by one parser each: (source name, text) -> records and rejects.
_TEXT_PARSERS = {"page": _parse_page, "bibtex": bibtex.parse, "ris": ris.parse, "medline": pubmed.parse_medline,
                 "pubmed-xml": pubmed.parse_xml, "wos": wos.parse_plain, "wos-tab": wos.parse_tab}
_BIBTEX_START = re.compile(rb"\s*(%[^\n]*\n\s*)*@\s*[A-Za-z]+\s*[{(]")
_RIS_TAG = re.compile(rb"^TY  - ", re.MULTILINE)
_MEDLINE_TAG = re.compile(rb"^PMID- ", re.MULTILINE)
_WOS_PLAIN = re.compile(rb"FN [^\n]*Web of Science")
_WOS_TAB = re.compile(rb"PT\t[^\n]*\tAB\t")
_SQLITE = b"SQLite format 3\x00"


def content_id(abstract: str) -> str:
    return _digest(abstract).hex()[:16]


# --- files ------------------------------------------------------------------------------------------------------
def _parse_file(path: Path, max_bytes: int) -> Iterator[_Rec | Rejected]:
    src, kind = str(path), _KINDS.get(path.suffix.lower())
    if not path.is_file():
        yield Rejected(src, "file", "broken link" if path.is_symlink() else "not a regular file")
        return
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8192)
    body = head.removeprefix(b"\xef\xbb\xbf")
    first = body.lstrip(b" \t\r\n")[:1]
    kind = _sniff(kind, path, body, first)
    whole = kind in _TEXT_PARSERS or kind == "document"
    reason = next((why for bad, why in [
        (not first and size <= len(head), "empty file"),
        (b"\0" in head and kind != "zotero", "binary file"),
        (kind is None, f"unsupported file type {path.suffix!r} (expected {', '.join(FILE_TYPES)})"),
        (path.name == "queries.jsonl" and path.with_name("corpus.jsonl").exists(),
         "BEIR queries, not abstracts (the corpus is corpus.jsonl)"),
        (whole and size > max_bytes, f"file too large ({size / 2**20:.1f} MB > limit {max_bytes / 2**20:.1f} MB)"),
    ] if bad), None)
    if reason:
        yield Rejected(src, "file", reason)
    elif kind == "json":
        yield from _records(src, _json_rows(path))
    elif kind == "zotero":   # a database, read by its path: not text, and no size limit
        yield from zotero.parse(src, path)
    elif kind == "document":
        yield from _records(src, _json_document(path))
    elif kind in ("csv", "tsv"):
        yield from _records(src, _csv_rows(path, "\t" if kind == "tsv" else ","), "column", "columns")
    else:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as e:
            yield Rejected(src, "file", _not_utf8(data, e.start))
            return
        yield from _TEXT_PARSERS[kind](src, text) if text.strip() else [Rejected(src, "file", "empty file")]


def _sniff(kind: str | None, path: Path, head: bytes, first: bytes) -> str | None:
    """The format by content where the suffix leaves it open: a `.txt` export may be BibTeX or RIS,
    and a `.json` file JSON lines, an array (CSL-JSON) or one pretty-printed object (an API response)."""
    if head.startswith(_SQLITE) and not path.suffix:
        return "zotero"   # only by name or without a suffix: `zotero.sqlite.bak` holds deleted items
    if kind == "page":
        if _WOS_PLAIN.match(head):
            return "wos"
        if _WOS_TAB.match(head):
            return "wos-tab"
        if _BIBTEX_START.match(head):
            return "bibtex"
        if _RIS_TAG.search(head):
            return "ris"
        if _MEDLINE_TAG.search(head):
            return "medline"
        if not path.suffix and first in (b"{", b"["):
            kind = "json"   # an extensionless JSON export
    if kind == "json":
        if first == b"[":
            return "document"
        line = head.lstrip(b" \t\r\n").split(b"\n", 1)[0]
        if len(line) == len(head.lstrip(b" \t\r\n")):   # an OpenAlex work line runs to 30 KB
            line = _first_line(path)
        try:
            json.loads(line)
        except ValueError:  # the first line is not a whole object: one document over many lines
            return "document" if first == b"{" else kind
    return kind


def _first_line(path: Path, limit: int = 2**24) -> bytes:
    with path.open("rb") as fh:
        while (line := fh.readline(limit)) and not line.strip():
            pass
    return line.removeprefix(b"\xef\xbb\xbf").strip()


def walk(roots: list[Path]) -> Iterator[Path]:
    """The files under `roots` (folders walked in order, hidden ones skipped), each once."""
    seen: set[Path] = set()   # a file named twice, or also inside a named folder, is read once
    for root in roots:
        files = [root]
        if root.is_dir():
            files = []
            for top, dirs, names in os.walk(root):
                # A Zotero data folder: the library is zotero.sqlite; storage/ holds its PDFs and snapshots.
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and not (d == "storage" and "zotero.sqlite" in names))
                files += [Path(top, n) for n in sorted(names) if not n.startswith(".")]
        for f in files:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                yield f


# --- duplicates -------------------------------------------------------------------------------------------------
def _keys(rec: _Rec) -> list[bytes]:
    # Title+abstract as well as the abstract: the 000 layout may put its title/abstract seam elsewhere.
    abstract = _norm(rec.abstract)
    joined = f"{_norm(rec.title)} {abstract}".strip()
    return list(dict.fromkeys([_digest(abstract, True), _digest(joined, True), *(rec.splits or {})]))


def _merge(old: _Rec, new: _Rec) -> None:
    if old.splits is not None and new.splits is None:     # a page that separates title and abstract wins
        old.title = new.title or old.splits.get(_digest(new.abstract), old.title)
        old.abstract, old.splits = new.abstract, None
    elif new.splits is not None and old.splits is None:
        old.title = old.title or new.splits.get(_digest(old.abstract), new.title)
    else:
        old.title = old.title or new.title
        old.abstract = max(old.abstract, new.abstract, key=len)
    old.authors = old.authors if old.authors is not None else new.authors
    old.date, old.own_id = old.date or new.date, old.own_id or new.own_id
    old.meta = merge_meta(old.meta, new.meta)


@dataclass
class _Papers:
    recs: list[_Rec] = field(default_factory=list)
    by_key: dict[bytes, int] = field(default_factory=dict)   # content digests of every record merged in
    by_id: dict[str, int] = field(default_factory=dict)
    by_ident: dict[str, int] = field(default_factory=dict)   # DOI, arXiv id, PMID
    duplicates: int = 0

    def add(self, rec: _Rec) -> Rejected | None:
        if why := junk(rec.title, rec.abstract):
            return Rejected(rec.source, rec.where, why)
        keys, idents = _keys(rec), identifiers(rec.meta)
        hit = self.by_id.get(rec.own_id) if rec.own_id else None
        if hit is not None and not set(keys) & set(_keys(other := self.recs[hit])):
            return Rejected(rec.source, rec.where, f"id {rec.own_id!r} already names another paper "
                                                   f"({other.source}, {other.where})")
        if hit is None:  # one paper from Zotero and from the arXiv snapshot, whatever their text
            hit = next((h for k in idents if (h := self.by_ident.get(k)) is not None
                        and same_work(rec.title, self.recs[h].title)), None)
        if hit is None:
            hit = min((self.by_key[k] for k in keys if k in self.by_key), default=None)
            # Records with ids of their own are distinct documents to their source (BEIR qrels cite each).
            if hit is not None and rec.own_id and self.recs[hit].own_id:
                hit = None
        if hit is None:
            hit = len(self.recs)
            self.recs.append(rec)
        else:
            _merge(self.recs[hit], rec)
            self.duplicates += 1
            keys += _keys(self.recs[hit])   # the merged paper may now read as the clean copy
        for k in keys:
            self.by_key.setdefault(k, hit)
        if own_id := self.recs[hit].own_id:
            self.by_id.setdefault(own_id, hit)
        for k in identifiers(self.recs[hit].meta):
            self.by_ident.setdefault(k, hit)
        return None


def load(paths: list[Path], max_bytes: int = DEFAULT_MAX_BYTES) -> LoadResult:
    """Parse every file (directories are walked) into unique papers."""
    return next(load_windows(paths, max_bytes, window=None))


def load_windows(paths: list[Path], max_bytes: int = DEFAULT_MAX_BYTES,
                 window: int | None = None) -> Iterator[LoadResult]:
    """`load`, a window of at most `window` unique papers at a time (None: one window), so that a library
    larger than memory (the 2.7M-line arXiv snapshot) streams through. Duplicates are merged within a
    window; a paper that comes back in a later window has the same paper id (or DOI, arXiv id, PMID) and
    the index, which already holds it, tells. Each file is listed in the window where it first yields a
    paper; the last window (the only one when nothing was found) may hold no papers."""
    roots = [Path(p) for p in paths]
    for p in roots:
        if not p.exists() and not p.is_symlink():
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(p))
    result, store = LoadResult(), _Papers()

    def flush() -> LoadResult:
        result.papers = [Paper(r.own_id or content_id(r.abstract), r.title, r.abstract, r.source, r.authors,
                               r.date, r.meta) for r in store.recs]
        result.duplicates = store.duplicates
        return result

    for path in walk(roots):
        yielded = False
        try:
            for item in _parse_file(path, max_bytes):
                rejected = item if isinstance(item, Rejected) else store.add(item)
                if isinstance(item, _Rec) and not yielded:
                    yielded = True
                    result.files.append(str(path))
                if rejected:
                    result.rejected.append(rejected)
                if window and len(store.recs) >= window:
                    yield flush()
                    result, store = LoadResult(), _Papers()
        except OSError as e:   # unreadable, or gone mid-walk: a problem with this file, not with the load
            result.rejected.append(Rejected(str(path), "file", f"cannot read: {e.strerror or e}"))
    yield flush()
