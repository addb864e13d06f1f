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
from collections import Counter
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


DEFAULT_MAX_BYTES = 200 * 2**20   # for text pages, which are read whole; JSONL and CSV stream
_KINDS = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "page",
          ".md": "page", "": "page"}
_TITLE_KEYS, _ABSTRACT_KEYS = ("title", "name"), ("abstract", "text", "summary", "body")
_ID_KEYS = ("_id", "paper_id", "id")
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DATE = rf"(?P<mon>{'|'.join(_MONTHS)}) (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?: \d+)?"   # then upvotes
_FOOTER = re.compile(rf"•\s*(?P<authors>\d+) authors?|(?P<dot>·)|{_DATE}")
_ORDER = "authors dot date"   # of a block's footer lines
_ONE_LINE = re.compile(rf"(?:-|\d+)\s+(?P<body>.+?)\s+(?P<authors>\d+) authors? · {_DATE}")
_SEPARATOR = re.compile(r"translated by\b.*")
_CHROME = frozenset({"new", "get trending papers in your email inbox!", "subscribe", "daily papers",  # casefolded
                     "byak and the research community", "by ak and the research community"})


def clean(text: str) -> str:
    return " ".join(text.split())


def _norm(text: str) -> str:
    # Scrapes of one abstract differ in case, punctuation and spacing, never in letters (any script) or digits.
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def _digest(text: str, normalised: bool = False) -> bytes:
    # A digest, not the normalised text, keys the duplicate index so a big corpus is not held twice.
    return hashlib.sha1((text if normalised else _norm(text)).encode()).digest()


def content_id(abstract: str) -> str:
    return _digest(abstract).hex()[:16]


def _iso(m: re.Match[str]) -> str | None:
    try:   # no year ("Feb 3") means the page's own year, which the scrape does not record
        return datetime.date(int(m["year"]), _MONTHS.index(m["mon"]) + 1, int(m["day"])).isoformat()
    except (TypeError, ValueError):
        return None


@dataclass
class _Rec:
    title: str
    abstract: str
    source: str
    where: str
    authors: int | None = None
    date: str | None = None
    own_id: str | None = None
    splits: dict[bytes, str] | None = None   # 000 layout: abstract digest -> title, for every plausible seam


# --- title/abstract seam for the 000 layout ---------------------------------------------------------------------
# Weights were tuned on the other seed pages' 172 title+abstract pairs run together: 166 seams are found again.
_PUNCT = "()[]{}\"'“”‘’,;:.!?"
_SMALL = frozenset("a an and as at but by for from in into is of on or over per than the to under via vs with without "
                   "between".split())
_STARTS = frozenset("a an the we our this these in it its while although despite however there recently".split())
_ACRONYM = re.compile(r"\([\w-]*[A-Z][\w-]*[A-Z][\w-]*\)[,.;:]?")


def _case(word: str) -> tuple[str, bool]:
    """Case of the word's head ("cap", "low", "other") and whether a later hyphen part is lower case."""
    parts = [p for p in re.split(r"[-‐–]", word.strip(_PUNCT)) if p]
    if not parts or not parts[0][0].isalpha() or any(c.isupper() for c in parts[0][1:]):
        return "other", False   # numbers and acronyms (BERT, LoRA, GANs) say nothing about title style
    return ("cap" if parts[0][0].isupper() else "low"), any(p[0].islower() for p in parts[1:])


def _seam_penalty(words: list[str], k: int, end: int) -> float:
    # A title is consistently Title Case or sentence case, does not end on "of"/"the" and seldom repeats a word.
    # An abstract's first sentence is sentence case, but for names spelled out before "(ABC)"; _STARTS words
    # capitalised inside it mean a new sentence began, so the seam is too far left.
    tc = sc = 0.0
    for i, w in enumerate(words[1:k], 1):
        case, low_tail = _case(w)
        bare, subtitle = w.strip(_PUNCT).lower(), words[i - 1].endswith((":", "?", "!"))
        tc += (case == "low" and bare not in _SMALL) + 0.5 * low_tail
        tc += case == "cap" and bare in _STARTS and not subtitle
        sc += case == "cap" and not subtitle
    repeats = sum(n - 1 for w, n in Counter(w.strip(_PUNCT).lower() for w in words[:k]).items() if w not in _SMALL)
    penalty = min(2 * tc, sc) + (words[k - 1].strip(_PUNCT).lower() in _SMALL) + 0.5 * repeats
    sentence, named = words[k + 1:end + 1], set()
    for j, w in enumerate(sentence):
        for q in range(j - 1, max(-1, j - 7), -1) if _ACRONYM.fullmatch(w) else ():
            if _case(sentence[q])[0] == "low" and sentence[q].strip(_PUNCT).lower() not in _SMALL:
                break
            named.add(q)
    for j, w in enumerate(sentence):
        if j not in named and _case(w)[0] == "cap":
            penalty += 3 if w.strip(_PUNCT).lower() in _STARTS else 0.75
    return penalty


def split_title(body: str) -> tuple[str, str, dict[bytes, str]]:
    """Guess where the title ends in "Title Abstract…" run together; also every other plausible seam."""
    words = body.split()
    end = next((i for i, w in enumerate(words) if re.search(r"[\w)\]]{2}\.$", w)
                and w.lower() not in {"al.", "etc.", "vs.", "fig.", "eq."}), len(words) - 1)
    seams = [k for k in range(1, min(end + 1, 40))
             if words[k][:1].isupper() or words[k][:1].isdigit() if not words[k - 1].endswith((":", "-"))]
    if not seams:
        return "", clean(body), {}
    best = min(seams, key=lambda k: (_seam_penalty(words, k, end), -k))
    return " ".join(words[:best]), " ".join(words[best:]), {_digest(" ".join(words[k:])): " ".join(words[:k])
                                                            for k in seams}


# --- text pages -------------------------------------------------------------------------------------------------
def _title_like(text: str) -> bool:
    return len(text) <= 300 and not re.search(r"\.\s+[A-Z]", text)


def _parse_page(src: str, text: str) -> list[_Rec | Rejected]:
    # split("\n"), not splitlines(): line numbers in rejects must match what an editor shows
    lines = [(n, clean(s)) for n, s in enumerate(text.split("\n"), 1) if s.strip()]
    body = [(n, s) for n, s in lines if s.casefold() not in _CHROME]
    out: list[_Rec | Rejected] = []
    if any(_SEPARATOR.fullmatch(s) for _, s in body):   # 003: each abstract is followed by "translated by …"
        buf: list[tuple[int, str]] = []
        for n, s in body:
            if not _SEPARATOR.fullmatch(s):
                buf.append((n, s))
            elif buf:
                out.append(_Rec("", clean(" ".join(t for _, t in buf)), src, f"line {buf[0][0]}"))
                buf = []
        if buf:   # no separator after it: the page may have been cut off mid-abstract
            out.append(Rejected(src, f"line {buf[0][0]}", "abstract without its 'translated by' line (truncated?)"))
    elif 2 * sum(bool(_ONE_LINE.fullmatch(s)) for _, s in body) >= len(body):   # 000: a paper a line
        for n, s in body:
            if m := _ONE_LINE.fullmatch(s):
                title, abstract, splits = split_title(m["body"])
                out.append(_Rec(title, abstract, src, f"line {n}", int(m["authors"]), _iso(m), splits=splits))
            else:
                out.append(Rejected(src, f"line {n}", "not a '<votes> <title> <abstract> N authors · <date>' line"))
    else:
        out = _parse_blocks(src, body, chrome=len(body) < len(lines))
    return out


def _parse_blocks(src: str, lines: list[tuple[int, str]], chrome: bool) -> list[_Rec | Rejected]:
    """Daily Papers: title / abstract / [• N authors] / [·] / [date] blocks, the page's own date on top."""
    out: list[_Rec | Rejected] = []
    texts: list[tuple[int, str]] = []
    footer: dict[str, re.Match[str]] = {}
    footers = False
    for n, s in lines:
        m = _FOOTER.fullmatch(s)
        if m is None:
            if footer:
                out += _blocks(src, texts, footer)
                texts, footer = [], {}
            texts.append((n, s))
            continue
        footers = True
        kind = "authors" if m["authors"] else "dot" if m["dot"] else "date"
        if not texts and not out and kind == "date":
            continue   # the page's own date ("Oct 28") under the chrome
        if not texts or any(_ORDER.index(k) >= _ORDER.index(kind) for k in footer):
            out.append(Rejected(src, f"line {n}", f"{kind} line without a title and abstract above it"))
        else:
            footer[kind] = m
    # With neither chrome nor footers any prose (a README) would pair up: take it only if it clearly does.
    pairs = zip(texts[::2], texts[1::2], strict=False)
    if not chrome and not footers and not (len(texts) % 2 == 0 and all(
            _title_like(t) and not _title_like(a) for (_, t), (_, a) in pairs)):
        return [Rejected(src, "file", "unrecognised text layout (expected a Daily Papers page, one paper a line, "
                                      "or abstracts separated by 'translated by')")]
    return out + _blocks(src, texts, footer)


def _blocks(src: str, texts: list[tuple[int, str]], footer: dict[str, re.Match[str]]) -> list[_Rec | Rejected]:
    out: list[_Rec | Rejected] = []
    i = 0
    while i < len(texts):
        (n, t), nxt = texts[i], texts[i + 1][1] if i + 1 < len(texts) else None
        # An even run is title/abstract pairs; an odd one lost a part, so the text's shape decides.
        if nxt is not None and (len(texts) % 2 == 0 or (_title_like(t) and not _title_like(nxt))):
            out.append(_Rec(t, nxt, src, f"line {n}"))
            i += 1
        else:
            out.append(Rejected(src, f"line {n}", "title without an abstract") if _title_like(t)
                       else _Rec("", t, src, f"line {n}"))
        i += 1
    if out and isinstance(out[-1], _Rec):
        out[-1].authors = int(footer["authors"]["authors"]) if "authors" in footer else None
        out[-1].date = _iso(footer["date"]) if "date" in footer else None
    return out


# --- JSON lines and CSV -----------------------------------------------------------------------------------------
def _pick(keys: Iterable[str], aliases: tuple[str, ...]) -> str | None:
    lower = {k.strip().lower(): k for k in keys}
    return next((lower[a] for a in aliases if a in lower), None)


def _no_schema(keys: Iterable[str], what: str = "field", saw: str = "fields") -> str:
    return f"no abstract {what} (saw {saw}: {', '.join(keys) or 'none'}); expected one of {'/'.join(_ABSTRACT_KEYS)}"


def _text(value: object) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(value)   # SciFact's own corpus stores an abstract as a list of sentences
    return "" if value is None else clean(value) if isinstance(value, str) else None


def _record(obj: dict[str, object], src: str, where: str) -> _Rec | Rejected:
    a_key, t_key, i_key = (_pick(obj, keys) for keys in (_ABSTRACT_KEYS, _TITLE_KEYS, _ID_KEYS))
    if a_key is None:
        return Rejected(src, where, _no_schema(obj))
    abstract, title = _text(obj[a_key]), _text(obj[t_key]) if t_key else ""
    if abstract is None or title is None:
        return Rejected(src, where, f"field {a_key if abstract is None else t_key!r} is not text")
    if not abstract:
        return Rejected(src, where, f"empty {a_key!r}")
    own = obj[i_key] if i_key else None   # BEIR qrels cite `_id` verbatim: keep it exactly
    own_id = own if isinstance(own, str) else str(own) if type(own) is int else ""
    date = next((obj[k] for k in ("date", "published") if isinstance(obj.get(k), str)), "")
    date = date[:10] if re.match(r"\d{4}(-\d\d(-\d\d)?)?$", date[:10]) else None
    people = obj.get("authors")
    authors = len(people) if isinstance(people, list) else people if type(people) is int else None
    return _Rec(title, abstract, src, where, own_id=own_id or None, date=date, authors=authors)


def _records(src: str, rows: Iterable[tuple[str, object] | Rejected], *words: str) -> Iterator[_Rec | Rejected]:
    known = seen = False
    for row in rows:
        seen = True
        if isinstance(row, Rejected):
            yield row
        elif not isinstance(row[1], dict):
            yield Rejected(src, row[0], f"expected a JSON object, got {type(row[1]).__name__}")
        elif known or _pick(row[1], _ABSTRACT_KEYS):
            known = True
            yield _record(row[1], src, row[0])
        else:   # the first record shows a schema we do not know: say so once, not once a record
            yield Rejected(src, "file", _no_schema(row[1], *words))
            return
    if not seen:
        yield Rejected(src, "file", "empty file")


def _lines(path: Path) -> Iterator[tuple[int, str] | Rejected]:
    """Decode line by line: a huge file streams, and one bad byte costs one line, not the file."""
    offset = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                yield n, raw.decode("utf-8").removeprefix("\ufeff")
            except UnicodeDecodeError as e:
                yield Rejected(str(path), f"line {n}", _not_utf8(raw, e.start, offset))
            offset += len(raw)


def _not_utf8(data: bytes, start: int, base: int = 0) -> str:
    return f"not UTF-8 text (byte 0x{data[start]:02x} at offset {base + start})"


def _json_rows(path: Path) -> Iterator[tuple[str, object] | Rejected]:
    for item in _lines(path):
        if isinstance(item, Rejected):
            yield item
        elif item[1].strip():
            try:
                yield f"line {item[0]}", json.loads(item[1])
            except json.JSONDecodeError as e:
                cut = "" if item[1].endswith("\n") else " (the file ends mid-record)"
                yield Rejected(str(path), f"line {item[0]}", f"invalid JSON: {e.msg}{cut}")


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[str, object] | Rejected]:
    bad: list[Rejected] = []
    header: list[str] = []
    at = rows = 0

    def decoded() -> Iterator[str]:
        nonlocal at
        for item in _lines(path):
            if isinstance(item, Rejected):
                bad.append(item)
            else:
                at = item[0]
                yield item[1]

    reader = csv.reader(decoded(), delimiter=delimiter)
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:
            yield Rejected(str(path), f"line {at}", f"CSV error: {e}")
            continue
        yield from bad
        bad.clear()
        if row is None:
            break
        if not any(c.strip() for c in row):
            continue
        if not header:
            header = row
        elif len(row) != len(header):
            yield Rejected(str(path), f"line {at}", f"expected {len(header)} fields, found {len(row)}")
        else:
            rows += 1
            yield f"line {at}", dict(zip(header, row, strict=True))
    if header and not rows:
        yield Rejected(str(path), "file", "no records after the header")


# --- files ------------------------------------------------------------------------------------------------------
def _parse_file(path: Path, max_bytes: int) -> Iterator[_Rec | Rejected]:
    src, kind = str(path), _KINDS.get(path.suffix.lower())
    if not path.is_file():
        yield Rejected(src, "file", "broken link" if path.is_symlink() else "not a regular file")
        return
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8192)
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if kind == "page" and not path.suffix and first == b"{":
        kind = "json"   # an extensionless export of JSON lines
    reason = next((why for bad, why in [
        (not first and size <= len(head), "empty file"),
        (b"\0" in head, "binary file"),
        (kind is None, f"unsupported file type {path.suffix!r} (expected .jsonl, .json, .csv, .tsv, .txt or .md)"),
        (kind == "json" and first == b"[", "a JSON array: expected JSON lines, one object a line"),
        (path.name == "queries.jsonl" and path.with_name("corpus.jsonl").exists(),
         "BEIR queries, not abstracts (the corpus is corpus.jsonl)"),
        (kind == "page" and size > max_bytes,
         f"file too large ({size / 2**20:.1f} MB > limit {max_bytes / 2**20:.1f} MB)"),
    ] if bad), None)
    if reason:
        yield Rejected(src, "file", reason)
    elif kind == "json":
        yield from _records(src, _json_rows(path))
    elif kind in ("csv", "tsv"):
        yield from _records(src, _csv_rows(path, "\t" if kind == "tsv" else ","), "column", "columns")
    else:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as e:
            yield Rejected(src, "file", _not_utf8(data, e.start))
            return
        yield from _parse_page(src, text) if text.strip() else [Rejected(src, "file", "empty file")]


def _walk(roots: list[Path]) -> Iterator[Path]:
    seen: set[Path] = set()   # a file named twice, or also inside a named folder, is read once
    for root in roots:
        files = [root]
        if root.is_dir():
            files = []
            for top, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
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


@dataclass
class _Papers:
    recs: list[_Rec] = field(default_factory=list)
    by_key: dict[bytes, int] = field(default_factory=dict)   # content digests of every record merged in
    by_id: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, rec: _Rec) -> Rejected | None:
        keys = _keys(rec)
        hit = self.by_id.get(rec.own_id) if rec.own_id else None
        if hit is not None and not set(keys) & set(_keys(other := self.recs[hit])):
            return Rejected(rec.source, rec.where, f"id {rec.own_id!r} already names another paper "
                                                   f"({other.source}, {other.where})")
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
        return None


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
        except OSError as e:   # unreadable, or gone mid-walk: a problem with this file, not with the load
            result.rejected.append(Rejected(str(path), "file", f"cannot read: {e.strerror or e}"))
        if yielded:
            result.files.append(str(path))
    result.papers = [Paper(r.own_id or content_id(r.abstract), r.title, r.abstract, r.source, r.authors, r.date)
                     for r in store.recs]
    result.duplicates = store.duplicates
    return result
