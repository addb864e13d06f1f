"""Sources → Paper: parse seed pages, JSONL/CSV and BEIR corpus files into papers.

Nothing is silently dropped: every block or record that cannot be turned into a
paper is returned as a `Rejected` with its file, location and reason.
"""
from __future__ import annotations

import csv
import datetime
import errno
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Paper:
    paper_id: str          # stable: from the content (or the record's own id, e.g. BEIR `_id`)
    title: str             # "" when the source has none (003 layout)
    abstract: str
    source: str            # file the paper was first read from
    authors: int | None = None
    date: str | None = None    # ISO YYYY-MM-DD where the page gives one


@dataclass(frozen=True)
class Rejected:
    source: str            # file
    location: str          # e.g. "line 12", "block 7", "record 3"
    reason: str


@dataclass
class LoadResult:
    papers: list[Paper] = field(default_factory=list)     # unique papers, first occurrence wins (merged)
    rejected: list[Rejected] = field(default_factory=list)
    files: list[str] = field(default_factory=list)        # files that yielded at least one paper
    duplicates: int = 0                                     # records merged into an earlier paper


DEFAULT_MAX_BYTES = 200 * 1024 * 1024   # limit for text pages, which are read whole; JSONL/CSV stream
_SNIFF = 8192
_TITLE_KEYS = ("title", "name")
_ABSTRACT_KEYS = ("abstract", "text", "summary", "body")
_ID_KEYS = ("_id", "paper_id", "id")
_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
          ".txt": "page", ".md": "page", "": "page"}
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DATE = rf"(?P<mon>{'|'.join(_MONTHS)}) (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?"
_DATE_LINE = re.compile(rf"{_DATE}(?: \d+)?")          # a trailing number is the upvote count
_AUTHORS_LINE = re.compile(r"•\s*(?P<n>\d+) authors?")
_ONE_LINE = re.compile(rf"(?:-|\d+)\s+(?P<body>.+?)\s+(?P<authors>\d+) authors? · {_DATE}(?: \d+)?")
_SEPARATOR = re.compile(r"translated by\b.*")
_CHROME = frozenset({"new", "get trending papers in your email inbox!", "subscribe", "daily papers",
                     "byak and the research community", "by ak and the research community"})
_FOOTER_ORDER = {"authors": 0, "dot": 1, "date": 2}


def clean(text: str) -> str:
    return " ".join(text.split())


def _norm(text: str) -> str:
    # Scrapes of one abstract differ in case, punctuation and spacing, never in letters (any script) or digits.
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def _digest(text: str) -> bytes:
    # Digests, not the normalised text, key the duplicate index: a big corpus must not be held twice.
    return hashlib.sha1(_norm(text).encode()).digest()


def content_id(abstract: str) -> str:
    return _digest(abstract).hex()[:16]


@dataclass
class _Rec:
    title: str
    abstract: str
    source: str
    where: str
    authors: int | None = None
    date: str | None = None
    own_id: str | None = None
    splits: dict[bytes, str] | None = None   # 000 layout: abstract digest -> title for every plausible split


def _iso(m: re.Match[str]) -> str | None:
    if not m["year"]:
        return None   # "Feb 3": the page means its own year, which the scrape does not record
    try:
        return datetime.date(int(m["year"]), _MONTHS.index(m["mon"]) + 1, int(m["day"])).isoformat()
    except ValueError:
        return None


# --- title/abstract split for the 000 layout -------------------------------------------------------
_PUNCT = "()[]{}\"'“”‘’,;:.!?"
_SMALL = frozenset("a an and as at but by for from in into is of on or over per than the to under via vs "
                   "with without between".split())
_STARTS = frozenset("a an the we our this these in it its".split())   # capitalised mid-sentence: a new sentence
_ABBREV = frozenset({"al.", "etc.", "vs.", "fig.", "eq.", "approx."})


def _case(word: str) -> tuple[str, bool]:
    """Case of the word's head ("cap", "low", "other") and whether a later hyphen part is lower case."""
    parts = [p for p in re.split(r"[-‐–]", word.strip(_PUNCT)) if p]
    if not parts or not parts[0][0].isalpha() or any(c.isupper() for c in parts[0][1:]):
        return "other", False   # numbers and acronyms (BERT, LoRA, GANs) say nothing about title style
    return ("cap" if parts[0][0].isupper() else "low"), any(p[0].islower() for p in parts[1:])


def _split_penalty(words: list[str], k: int, end: int) -> float:
    # A title is consistently Title Case or sentence case and does not end on "of"/"the"; the abstract's
    # first sentence is sentence case. Lower-case words in a Title Case title are rare, proper nouns common.
    tc = sc = 0.0
    for i, w in enumerate(words[1:k], 1):
        case, low_tail = _case(w)
        bare = w.strip(_PUNCT).lower()
        subtitle = words[i - 1].endswith((":", "?", "!"))
        tc += (case == "low" and bare not in _SMALL) + 0.5 * low_tail + (case == "cap" and bare in _STARTS
                                                                        and not subtitle)
        sc += case == "cap" and not subtitle
    penalty = min(2 * tc, sc) + (words[k - 1].strip(_PUNCT).lower() in _SMALL)
    for w in words[k + 1:end + 1]:
        if _case(w)[0] == "cap":
            penalty += 1.0 if w.strip(_PUNCT).lower() in _STARTS else 0.25
    return penalty


def split_title(body: str) -> tuple[str, str, dict[bytes, str]]:
    """Guess where the title ends in "Title Abstract…" run together; also every other plausible split."""
    words = body.split()
    end = next((i for i, w in enumerate(words) if re.search(r"[\w)\]]{2}\.$", w) and w.lower() not in _ABBREV),
               len(words) - 1)
    cands = [k for k in range(1, min(end + 1, 40))
             if words[k].strip(_PUNCT)[:1].isupper() or words[k][:1].isdigit()
             if not words[k - 1].endswith((":", "-"))]
    if not cands:
        return "", clean(body), {}
    best = min(cands, key=lambda k: (_split_penalty(words, k, end), k))
    splits = {_digest(" ".join(words[k:])): " ".join(words[:k]) for k in cands}
    return " ".join(words[:best]), " ".join(words[best:]), splits


# --- text pages ------------------------------------------------------------------------------------
def _title_like(text: str) -> bool:
    return len(text) <= 300 and not re.search(r"\.\s+[A-Z]", text)


def _parse_page(src: str, text: str) -> list[_Rec | Rejected]:
    lines = [ln.strip() for ln in text.split("\n")]   # split("\n"): numbers match what an editor shows
    body = [s for s in lines if s and s.casefold() not in _CHROME]
    if any(_SEPARATOR.fullmatch(s) for s in body):
        return _parse_translated(src, lines)
    if body and 2 * sum(bool(_ONE_LINE.fullmatch(s)) for s in body) >= len(body):
        return _parse_one_line(src, lines)
    return _parse_blocks(src, lines)


def _parse_translated(src: str, lines: list[str]) -> list[_Rec | Rejected]:
    out: list[_Rec | Rejected] = []
    buf: list[tuple[int, str]] = []
    for n, s in enumerate(lines, 1):
        if _SEPARATOR.fullmatch(s):
            if buf:
                out.append(_Rec("", clean(" ".join(t for _, t in buf)), src, f"line {buf[0][0]}"))
            buf = []
        elif s and s.casefold() not in _CHROME:
            buf.append((n, s))
    if buf:   # the page puts the separator after each abstract: text after the last one may be cut short
        tail = clean(" ".join(t for _, t in buf))
        if tail.endswith((".", "!", "?", "。", ")")):
            out.append(_Rec("", tail, src, f"line {buf[0][0]}"))
        else:
            out.append(Rejected(src, f"line {buf[0][0]}", "abstract after the last 'translated by' line "
                                                           "ends mid-sentence (truncated?)"))
    return out


def _parse_one_line(src: str, lines: list[str]) -> list[_Rec | Rejected]:
    out: list[_Rec | Rejected] = []
    for n, s in enumerate(lines, 1):
        if not s or s.casefold() in _CHROME:
            continue
        m = _ONE_LINE.fullmatch(s)
        if m is None:
            out.append(Rejected(src, f"line {n}", "not a '<votes> <title> <abstract> N authors · <date>' "
                                                  "line (truncated?)"))
            continue
        title, abstract, splits = split_title(m["body"])
        out.append(_Rec(title, abstract, src, f"line {n}", int(m["authors"]), _iso(m), splits=splits))
    return out


def _parse_blocks(src: str, lines: list[str]) -> list[_Rec | Rejected]:
    """Daily Papers: title / abstract / [• N authors] / [·] / [date], under some page chrome."""
    out: list[_Rec | Rejected] = []
    texts: list[tuple[int, str]] = []
    footer: dict[str, re.Match[str] | None] = {}
    marked = False   # chrome or footers seen: without them paragraphs are only papers if they clearly pair
    for n, s in enumerate(lines, 1):
        if not s:
            continue
        if s.casefold() in _CHROME:
            marked = True
            continue
        m_auth, m_date = _AUTHORS_LINE.fullmatch(s), _DATE_LINE.fullmatch(s)
        kind = "authors" if m_auth else "dot" if s == "·" else "date" if m_date else None
        if kind is None:
            if footer:
                out += _blocks(src, texts, footer)
                texts, footer = [], {}
            texts.append((n, s))
            continue
        marked = True
        if not texts and not out and kind == "date":
            continue   # the page's own date ("Oct 28") under the chrome
        if not texts or any(_FOOTER_ORDER[k] >= _FOOTER_ORDER[kind] for k in footer):
            out.append(Rejected(src, f"line {n}", f"{kind} line without a title/abstract above it"))
            continue
        footer[kind] = m_auth or m_date
    if not marked and not (len(texts) % 2 == 0 and all(
            _title_like(t) and not _title_like(a) for (_, t), (_, a) in zip(texts[::2], texts[1::2]))):
        return [Rejected(src, "file", "unrecognised text layout (expected a Daily Papers page, one paper a "
                                      "line, or abstracts separated by 'translated by')")] if texts else []
    return out + _blocks(src, texts, footer)


def _blocks(src: str, texts: list[tuple[int, str]], footer: dict[str, re.Match[str] | None]
            ) -> list[_Rec | Rejected]:
    out: list[_Rec | Rejected] = []
    i = 0
    while i < len(texts):
        n, t = texts[i]
        # An even run is title/abstract pairs; an odd one lost a part, so let the text's shape decide.
        pair = i + 1 < len(texts) and (len(texts) % 2 == 0 or (_title_like(t) and not _title_like(texts[i + 1][1])))
        if pair:
            out.append(_Rec(t, texts[i + 1][1], src, f"line {n}"))
        elif _title_like(t):
            out.append(Rejected(src, f"line {n}", "title without an abstract"))
        else:
            out.append(_Rec("", t, src, f"line {n}"))
        i += 2 if pair else 1
    last = out[-1] if out else None
    if isinstance(last, _Rec):
        last.authors = int(footer["authors"]["n"]) if footer.get("authors") else None
        last.date = _iso(footer["date"]) if footer.get("date") else None
    return out


# --- JSON / CSV records ----------------------------------------------------------------------------
def _pick(keys: Iterable[str], aliases: tuple[str, ...]) -> str | None:
    lower = {k.strip().lower(): k for k in keys}
    return next((lower[a] for a in aliases if a in lower), None)


def _no_schema(keys: Iterable[str], what: str = "field") -> str:
    return (f"no abstract {what} (saw {what.replace('y', 'ie')}s: {', '.join(map(str, keys)) or 'none'}); "
            f"expected one of {'/'.join(_ABSTRACT_KEYS)}")


def _as_text(value: object) -> str | None:
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(value)   # some corpora (SciFact's own) store an abstract as a list of sentences
    return clean(value) if isinstance(value, str) else None


def _record(obj: object, src: str, where: str) -> _Rec | str | None:
    """A paper, a reason this record is unusable, or None when it has no abstract field at all."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    a_key, t_key, i_key = (_pick(obj, keys) for keys in (_ABSTRACT_KEYS, _TITLE_KEYS, _ID_KEYS))
    if a_key is None:
        return None
    abstract, title = _as_text(obj[a_key]), _as_text(obj[t_key]) if t_key else ""
    if abstract is None or title is None:
        return f"field {a_key if abstract is None else t_key!r} is not text"
    if not abstract:
        return f"empty {a_key!r}"
    own = obj[i_key] if i_key else None
    own_id = own if isinstance(own, str) else str(own) if isinstance(own, int) and not isinstance(own, bool) else ""
    return _Rec(title, abstract, src, where, own_id=own_id or None)


def _records(src: str, items: Iterable[tuple[str, object] | Rejected]) -> Iterator[_Rec | Rejected]:
    matched = False
    for item in items:
        if isinstance(item, Rejected):
            yield item
            continue
        where, obj = item
        rec = _record(obj, src, where)
        if isinstance(rec, _Rec):
            matched = True
            yield rec
        elif rec is not None:
            yield Rejected(src, where, rec)
        elif matched:
            yield Rejected(src, where, _no_schema(obj))   # type: ignore[arg-type]  # dict: _record checked
        else:   # the file's schema is not one we know: say so once, not once a record
            yield Rejected(src, "file", _no_schema(obj))   # type: ignore[arg-type]
            return


def _lines(path: Path) -> Iterator[tuple[int, str] | Rejected]:
    """Decode line by line: a huge file streams, and one bad byte costs one line, not the file."""
    offset = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                yield n, raw.decode("utf-8").removeprefix("\ufeff" if n == 1 else "")
            except UnicodeDecodeError as e:
                yield Rejected(str(path), f"line {n}", _not_utf8(raw, e.start, offset))
            offset += len(raw)


def _not_utf8(data: bytes, start: int, base: int = 0) -> str:
    return f"not UTF-8 text (byte 0x{data[start]:02x} at offset {base + start})"


def _json_lines(path: Path) -> Iterator[tuple[str, object] | Rejected]:
    seen = False
    for item in _lines(path):
        if isinstance(item, Rejected) or not item[1].strip():
            yield from [item] if isinstance(item, Rejected) else []
            continue
        seen, (n, text) = True, item
        try:
            yield f"line {n}", json.loads(text)
        except json.JSONDecodeError as e:
            cut = "" if text.endswith("\n") else " (the file ends mid-record)"
            yield Rejected(str(path), f"line {n}", f"invalid JSON: {e.msg}{cut}")
    if not seen:
        yield Rejected(str(path), "file", "empty file")


def _csv_rows(path: Path, delimiter: str) -> Iterator[_Rec | Rejected]:
    src, bad, at = str(path), [], [0]

    def text() -> Iterator[str]:
        for item in _lines(path):
            if isinstance(item, Rejected):
                bad.append(item)
            else:
                at[0] = item[0]
                yield item[1]

    reader, header, rows = csv.reader(text(), delimiter=delimiter), None, 0
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:
            yield Rejected(src, f"line {at[0]}", f"CSV error: {e}")
            continue
        yield from bad
        bad.clear()
        if row is None:
            break
        if not any(c.strip() for c in row):
            continue
        if header is None:
            header = row
            if _pick(header, _ABSTRACT_KEYS) is None:
                yield Rejected(src, "file", _no_schema(header, "column"))
                return
        elif len(row) != len(header):
            yield Rejected(src, f"line {at[0]}", f"expected {len(header)} fields, found {len(row)}")
        else:
            rows += 1
            yield from _records(src, [(f"line {at[0]}", dict(zip(header, row)))])
    if not rows:
        yield Rejected(src, "file", "empty file" if header is None else "no records after the header")


# --- files -----------------------------------------------------------------------------------------
def _parse_file(path: Path, max_bytes: int) -> Iterator[_Rec | Rejected]:
    src = str(path)
    if not path.is_file():
        yield Rejected(src, "file", "broken link" if path.is_symlink() else "not a regular file")
        return
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_SNIFF)
    kind = _KINDS.get(path.suffix.lower())
    if kind == "page" and not path.suffix and head.lstrip()[:1] == b"{":
        kind = "jsonl"
    reason = ("empty file" if not head.strip() and size < _SNIFF else "binary file" if b"\0" in head
              else f"unsupported file type {path.suffix!r} (expected {', '.join(k for k in _KINDS if k)})"
              if kind is None else "BEIR queries, not abstracts: load corpus.jsonl"
              if path.name == "queries.jsonl" and path.with_name("corpus.jsonl").exists()
              else f"file too large ({size / 2**20:.1f} MB > limit {max_bytes / 2**20:.1f} MB)"
              if kind == "page" and size > max_bytes else None)
    if reason:
        yield Rejected(src, "file", reason)
    elif kind in ("csv", "tsv"):
        yield from _csv_rows(path, "\t" if kind == "tsv" else ",")
    elif kind == "json" and size <= max_bytes and head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[":
        yield from _json_array(path)
    elif kind in ("json", "jsonl"):
        yield from _records(src, _json_lines(path))
    else:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as e:
            yield Rejected(src, "file", _not_utf8(data, e.start))
            return
        yield from _parse_page(src, text) if text.strip() else [Rejected(src, "file", "empty file")]


def _json_array(path: Path) -> Iterator[_Rec | Rejected]:
    src, data = str(path), path.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as e:
        yield Rejected(src, "file", _not_utf8(data, e.start))
    except json.JSONDecodeError as e:   # one document: nothing after the first error can be trusted
        yield Rejected(src, f"line {e.lineno}", f"invalid JSON: {e.msg} (column {e.colno})")
    else:
        yield from _records(src, ((f"record {i}", obj) for i, obj in enumerate(doc, 1)))


def _walk(roots: list[Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for root in roots:
        files = [root]
        if root.is_dir():
            files = []
            for top, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [Path(top, n) for n in sorted(names) if not n.startswith(".")]
        for f in files:
            if f.resolve() not in seen:   # a file named twice (or inside a named folder) is one source
                seen.add(f.resolve())
                yield f


# --- duplicates ------------------------------------------------------------------------------------
def _keys(rec: _Rec) -> list[bytes]:
    # Abstract alone, and title+abstract: the 000 layout may put the title/abstract seam in the wrong place.
    keys = [_digest(rec.abstract), _digest(f"{rec.title} {rec.abstract}"), *(rec.splits or {})]
    return list(dict.fromkeys(keys))


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
    old.date = old.date or new.date
    old.own_id = old.own_id or new.own_id


class _Papers:
    def __init__(self) -> None:
        self.recs: list[_Rec] = []
        self.by_key: dict[bytes, int] = {}
        self.by_id: dict[str, int] = {}
        self.duplicates = 0

    def add(self, rec: _Rec) -> Rejected | None:
        keys = _keys(rec)
        hit = self.by_id.get(rec.own_id) if rec.own_id else None
        if hit is not None and not set(keys) & set(_keys(self.recs[hit])):
            other = self.recs[hit]
            return Rejected(rec.source, rec.where, f"id {rec.own_id!r} already names a different paper "
                                                   f"({other.source}, {other.where})")
        if hit is None:
            hit = min((self.by_key[k] for k in keys if k in self.by_key), default=None)
            # Different ids of their own are different documents to their source (BEIR qrels cite each).
            if hit is not None and rec.own_id and self.recs[hit].own_id:
                hit = None
        if hit is None:
            hit = len(self.recs)
            self.recs.append(rec)
        else:
            _merge(self.recs[hit], rec)
            self.duplicates += 1
        for k in keys + _keys(self.recs[hit]):
            self.by_key.setdefault(k, hit)
        if self.recs[hit].own_id:
            self.by_id.setdefault(self.recs[hit].own_id, hit)   # type: ignore[arg-type]
        return None

    def papers(self) -> list[Paper]:
        return [Paper(r.own_id or content_id(r.abstract), r.title, r.abstract, r.source, r.authors, r.date)
                for r in self.recs]


def load(paths: list[Path], max_bytes: int = DEFAULT_MAX_BYTES) -> LoadResult:
    """Parse every file (directories are walked) into unique papers."""
    roots = [Path(p) for p in paths]
    for p in roots:
        if not p.exists() and not p.is_symlink():
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(p))
    result, store = LoadResult(), _Papers()
    for path in _walk(roots):
        yielded = False
        try:
            for item in _parse_file(path, max_bytes):
                rejected = item if isinstance(item, Rejected) else store.add(item)
                yielded |= isinstance(item, _Rec)
                if rejected:
                    result.rejected.append(rejected)
        except OSError as e:   # unreadable or vanished mid-walk: a problem with this file, not the load
            result.rejected.append(Rejected(str(path), "file", f"cannot read: {e.strerror or e}"))
        if yielded:
            result.files.append(str(path))
    result.papers, result.duplicates = store.papers(), store.duplicates
    return result
