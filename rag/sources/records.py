"""JSON lines, JSON documents (CSL-JSON, OpenAlex and Semantic Scholar responses), CSV and TSV files (a
BEIR corpus.jsonl among them) → records; lines and rows are streamed.

Fields are found by name (`abstract`/`text`/…, `title`/`name`, `_id`/`paper_id`/`id`), so one reader takes
JSON lines from the arXiv metadata snapshot and the Semantic Scholar datasets as well as CSV exports from
Zotero and Scopus. A CSV file picks its own delimiter (`,`, `;` or tab, as Excel writes them in different
locales) and encoding (UTF-8, with or without a BOM, else Windows-1252). A line that cannot be decoded,
parsed or read as a paper comes back as a `Rejected` with its line number.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

from rag.sources.parsed import Rejected, _not_utf8, _Rec, clean, meta

# `abstract_inverted_index`: OpenAlex stores an abstract as {word: [positions]}; Zotero's CSV calls it `Abstract Note`.
_TITLE_KEYS = ("title", "name")
_ABSTRACT_KEYS = ("abstract", "text", "summary", "body", "abstract_inverted_index", "abstract note")
_ABSTRACT_NAMED = "/".join(_ABSTRACT_KEYS[:4])  # what a reject asks for: the names people write
# Where API responses keep their records: OpenAlex `results`, Semantic Scholar search `data`.
_CONTAINERS = ("results", "data", "items", "records", "papers")
_ID_KEYS = ("_id", "paper_id", "id")
# Records that are known to carry no abstract, and where the abstracts are instead.
_NO_ABSTRACT_HINTS = {"corpusid": "a Semantic Scholar 'papers' dataset has no abstracts; load the 'abstracts' dataset"}
_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?")


def _pick(keys: Iterable[str], aliases: tuple[str, ...]) -> str | None:
    lower = {k.strip().lower(): k for k in keys}
    return next((lower[a] for a in aliases if a in lower), None)


def _no_schema(keys: Iterable[str], what: str = "field", saw: str = "fields") -> str:
    keys = list(keys)
    hint = next((f": {why}" for key, why in _NO_ABSTRACT_HINTS.items() if _pick(keys, (key,))), "")
    return f"no abstract {what} (saw {saw}: {', '.join(keys) or 'none'}); expected one of {_ABSTRACT_NAMED}{hint}"


def _text(value: object) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(value)   # SciFact's own corpus stores an abstract as a list of sentences
    return "" if value is None else clean(value) if isinstance(value, str) else None


def _inverted(index: object) -> str | None:
    """OpenAlex's abstract_inverted_index back to text; None if it is not one."""
    if index is None:
        return ""
    if not isinstance(index, dict):
        return None
    at = {pos: word for word, places in index.items() if isinstance(places, list) for pos in places}
    return clean(" ".join(at[p] for p in sorted(at) if isinstance(p, int)))


def _date(obj: dict[str, object]) -> str | None:
    """ISO date (or year) from the fields exports use, in any letter case: date, published,
    publication_date (OpenAlex), publicationDate and year (Semantic Scholar, Scopus), Publication Year
    (Zotero), issued.date-parts (CSL-JSON), versions[0].created and update_date (the arXiv snapshot)."""
    for key in ("date", "published", "publication_date", "publicationDate", "year", "publication_year",
                "publication year"):
        value = _get(obj, key)
        value = str(value) if type(value) is int else value
        if isinstance(value, str) and re.match(r"\d{4}(-\d\d(-\d\d)?)?$", value.strip()[:10]):
            return value.strip()[:10]
    issued = obj.get("issued")
    parts = issued.get("date-parts") if isinstance(issued, dict) else None
    if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
        ymd = [p for p in parts[0][:3] if type(p) is int or (isinstance(p, str) and p.isdigit())]
        if ymd and len(str(ymd[0])) == 4:
            return "-".join([str(ymd[0]), *(str(p).zfill(2) for p in ymd[1:])])
    return _arxiv_date(obj)


def _arxiv_date(obj: dict[str, object]) -> str | None:
    """The first version's submission date ("Mon, 2 Apr 2007 19:18:42 GMT"), which is when a preprint
    appeared; update_date is only when its metadata last changed, so it comes second."""
    versions = obj.get("versions")
    first = versions[0] if isinstance(versions, list) and versions and isinstance(versions[0], dict) else {}
    try:
        return parsedate_to_datetime(str(first.get("created"))).date().isoformat()
    except (TypeError, ValueError):
        updated = obj.get("update_date")
        return updated if isinstance(updated, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", updated) else None


def _record(obj: dict[str, object], src: str, where: str) -> _Rec | Rejected:
    a_key, t_key, i_key = (_pick(obj, keys) for keys in (_ABSTRACT_KEYS, _TITLE_KEYS, _ID_KEYS))
    if a_key is None:
        return Rejected(src, where, _no_schema(obj))
    abstract = _inverted(obj[a_key]) if a_key.lower() == "abstract_inverted_index" else _text(obj[a_key])
    title = _text(obj[t_key]) if t_key else ""
    if abstract is None or title is None:
        return Rejected(src, where, f"field {a_key if abstract is None else t_key!r} is not text")
    if not abstract:
        return Rejected(src, where, f"empty {a_key!r}")
    own = obj[i_key] if i_key else None   # BEIR qrels cite `_id` verbatim: keep it exactly
    own_id = own if isinstance(own, str) else str(own) if type(own) is int else ""
    date = _date(obj)
    people = _get(obj, "authors", "author", "authorships")
    # The arXiv snapshot's `authors` is LaTeX ("C. Bal\\'azs"); `authors_parsed` has the names decoded.
    names = _names(_get(obj, "authors_parsed") or people)
    authors = len(names) if names else people if type(people) is int else None
    return _Rec(title, abstract, src, where, own_id=own_id or None, date=date, authors=authors,
                meta=_meta(obj, names, date))


def _get(obj: dict[str, object], *aliases: str) -> object:
    key = _pick(obj, tuple(a.lower() for a in aliases))
    return obj[key] if key else None


def _names(people: object) -> list[str]:
    """Author names from a list of strings, of CSL-JSON {family, given}, Semantic Scholar {name} or
    OpenAlex {author: {display_name}} objects, of arXiv [last, first, suffix] lists (as "Last, First"), or
    one string ("Family, Given; Family, Given" from Zotero's CSV, "A, B and C" from arXiv or Scopus)."""
    if isinstance(people, str):
        parts = people.split(";") if ";" in people else re.split(r",\s*|\s+and\s+", people)
        return [clean(p) for p in parts if clean(p)]
    names = []
    for person in people if isinstance(people, list) else []:
        if isinstance(person, list):
            person = ", ".join(str(part) for part in person if isinstance(part, str) and part.strip())
        if isinstance(person, dict):
            person = person.get("author", person) if isinstance(person.get("author"), dict) else person
            person = (person.get("name") or person.get("display_name") or person.get("literal")
                      or " ".join(str(person[k]) for k in ("given", "family") if person.get(k)))
        if isinstance(person, str) and clean(person):
            names.append(clean(person))
    return names


def _meta(obj: dict[str, object], names: list[str], date: str | None) -> dict:
    """Venue, DOI, URL, ids and keywords under the names CSL-JSON, OpenAlex, Semantic Scholar (API and
    datasets), the arXiv snapshot and Zotero's or Scopus's CSV give them."""
    # The S2 'abstracts' dataset keeps its ids and open-access link under openaccessinfo.
    access = _get(obj, "openaccessinfo") if isinstance(_get(obj, "openaccessinfo"), dict) else {}
    external = _get(obj, "externalIds") or access.get("externalids")
    external = external if isinstance(external, dict) else {}
    where = _get(obj, "primary_location") if isinstance(_get(obj, "primary_location"), dict) else {}
    source = where.get("source") if isinstance(where.get("source"), dict) else {}
    venue = (_get(obj, "container-title", "venue", "journal", "publicationTitle", "publication title",
                  "source title", "journal-ref") or source.get("display_name"))
    own = str(_get(obj, "id") or "")
    arxiv = own if _get(obj, "authors_parsed", "versions") and _ARXIV_ID.fullmatch(own) else None
    url = (_get(obj, "url", "link") or where.get("landing_page_url") or access.get("url")
           or (arxiv and f"https://arxiv.org/abs/{arxiv}"))
    # A preprint saved from arXiv (Zotero, OpenAlex) names its arXiv id only in its URL.
    from_url = re.search(rf"arxiv\.org/(?:abs|pdf)/({_ARXIV_ID.pattern})", url) if isinstance(url, str) else None
    ids = {"s2": _get(obj, "paperId"), "arxiv": external.get("ArXiv") or arxiv or (from_url and from_url[1]),
           "pmid": external.get("PubMed") or _get(obj, "pubmed id"), "scopus": _get(obj, "eid"),
           "openalex": own.rsplit("/", 1)[-1] if "openalex.org/" in own else None, "s2_corpus": _get(obj, "corpusid")}
    return meta(names, date and date[:4], venue if isinstance(venue, str) else None,
                _get(obj, "doi") or external.get("DOI"), url, ids, _keywords(obj))


def _keywords(obj: dict[str, object]) -> list[str] | None:
    """Keywords from a list of strings or of OpenAlex {display_name} objects, or from strings: "a; b"
    (Zotero's Manual and Automatic Tags, Scopus's Author Keywords), "a, b" (CSL-JSON), and the arXiv
    snapshot's space-separated categories ("math.CO cs.CG")."""
    words: list[str] = []
    for key in ("keywords", "keyword", "manual tags", "automatic tags", "author keywords", "categories"):
        value = _get(obj, key)
        if isinstance(value, list):
            value = [v.get("display_name") if isinstance(v, dict) else v for v in value]
            words += [v for v in value if isinstance(v, str)]
        elif isinstance(value, str) and value.strip():
            by = r"\s+" if key == "categories" else ";" if ";" in value else ","
            words += re.split(by, value)
    return words or None


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


def _lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str] | Rejected]:
    """Decode line by line: a huge file streams, and one bad byte costs one line, not the file."""
    offset = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                yield n, raw.decode(encoding).removeprefix("\ufeff")
            except UnicodeDecodeError as e:
                why = _not_utf8(raw, e.start, offset)
                yield Rejected(str(path), f"line {n}", why if encoding == "utf-8" else
                               why.replace("not UTF-8 text", "neither UTF-8 nor Windows-1252 text"))
            offset += len(raw)


def _csv_encoding(path: Path) -> str:
    """UTF-8, or Windows-1252 for a spreadsheet saved by Excel as "CSV" in a Western locale (é is the
    single byte 0xE9). Such a file never holds a valid multi-byte UTF-8 sequence, while a UTF-8 file with
    one damaged byte does elsewhere: that one keeps UTF-8 and loses only the damaged line."""
    broken = False
    with path.open("rb") as fh:
        for raw in fh:
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                return "utf-8"
            except UnicodeDecodeError:
                broken = True
    return "cp1252" if broken else "utf-8"


def _delimiter(header: str, default: str) -> str:
    """`,`, `;` or tab, whichever the header row uses most outside quotes: Excel writes `;` where the
    decimal mark is a comma (most of Europe), and a TSV may be saved as .csv. A tie keeps `default`."""
    counts = dict.fromkeys((default, ",", ";", "\t"), 0)
    quoted = False
    for char in header:
        quoted ^= char == '"'
        if not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: (counts[d], d == default))
    return best if counts[best] else default


def _inner(document: object) -> list | None:
    """The records an API response holds (OpenAlex `results`, Semantic Scholar `data`), or None when
    `document` is not such a response."""
    if not isinstance(document, dict) or _pick(document, _ABSTRACT_KEYS):
        return None
    inner = next((k for k in _CONTAINERS if isinstance(document.get(k), list)), None)
    return document[inner] if inner else None


def _json_rows(path: Path) -> Iterator[tuple[str, object] | Rejected]:
    for item in _lines(path):
        if isinstance(item, Rejected):
            yield item
        elif item[1].strip():
            try:
                line = json.loads(item[1])
            except json.JSONDecodeError as e:
                cut = "" if item[1].endswith("\n") else " (the file ends mid-record)"
                yield Rejected(str(path), f"line {item[0]}", f"invalid JSON: {e.msg}{cut}")
                continue
            # A compact API response is one line, and a harvest may hold one response page a line.
            inner = _inner(line)
            if inner is None:
                yield f"line {item[0]}", line
            else:
                yield from ((f"line {item[0]}, record {n}", record) for n, record in enumerate(inner, 1))


def _json_document(path: Path) -> Iterator[tuple[str, object] | Rejected]:
    """One JSON document: an array of records (CSL-JSON), an API response holding them (OpenAlex
    `results`, Semantic Scholar `data`), or a single record, pretty-printed or not."""
    data = path.read_bytes()
    try:
        document = json.loads(text := data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as e:
        yield Rejected(str(path), "file", _not_utf8(data, e.start))
        return
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text[:e.pos].endswith("\n"):
            # One whole value a line after all: JSON lines whose first line (an OpenAlex work runs to
            # tens of kB) was too long for the format sniffer to see its end.
            yield from _json_rows(path)
        else:
            yield Rejected(str(path), f"line {e.lineno}", f"invalid JSON: {e.msg}")
        return
    if isinstance(document, dict):
        document = _inner(document) or [document]
    if not isinstance(document, list):
        yield Rejected(str(path), "file", f"expected JSON records, got {type(document).__name__}")
        return
    for n, item in enumerate(document, 1):
        yield f"record {n}", item


def _fit(row: list[str], header: list[str]) -> dict[str, str] | str:
    """The row as {column: value}, or why it cannot be. A row one or more fields longer than its header
    is read when the extra fields are empty and trailing (a stray delimiter at the end), or when the
    header has one numbered column (Scopus's "Funding Text 1") whose further texts ("Funding Text 2", …)
    the row carries and the header does not name: Scopus writes such rows (NLeSC/litstudy's test export).
    Anything else would shift values under the wrong names, so it is rejected."""
    extra = len(row) - len(header)
    if extra == 0:
        return dict(zip(header, row, strict=True))
    if extra > 0 and not any(c.strip() for c in row[len(header):]):
        return dict(zip(header, row[:len(header)], strict=True))
    numbered = [i for i, name in enumerate(header) if re.fullmatch(r".*\S 1", name.strip())]
    if extra > 0 and len(numbered) == 1:
        at, stem = numbered[0], header[numbered[0]].strip()[:-1]
        names = [*header[:at + 1], *(f"{stem}{k}" for k in range(2, extra + 2)), *header[at + 1:]]
        return dict(zip(names, row, strict=True))
    return f"expected {len(header)} fields, found {len(row)}"


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[str, object] | Rejected]:
    """Rows as {column: value}. `delimiter` is the one the suffix suggests; the header row decides."""
    bad: list[Rejected] = []
    header: list[str] = []
    at = first = rows = 0

    def decoded() -> Iterator[str]:
        nonlocal at, first
        for item in _lines(path, _csv_encoding(path)):
            if isinstance(item, Rejected):
                bad.append(item)
            else:
                at, first = item[0], first or item[0]
                yield item[1]

    lines = decoded()
    head = next((line for line in lines if line.strip()), "")
    reader = csv.reader(_chain(head, lines), delimiter=_delimiter(head, delimiter))
    while True:
        first = 0    # set by the record's first line, so a reject names the line where the record starts
        try:
            row = next(reader, None)
        except csv.Error as e:
            yield Rejected(str(path), f"line {first or at}", f"CSV error: {e}")
            continue
        yield from bad
        bad.clear()
        if row is None:
            break
        if not any(c.strip() for c in row):
            continue
        if not header:
            header = row
        elif isinstance(fields := _fit(row, header), str):
            yield Rejected(str(path), f"line {first or at}", fields)
        else:
            rows += 1
            yield f"line {first or at}", fields
    if header and not rows:
        yield Rejected(str(path), "file", "no records after the header")


def _chain(head: str, rest: Iterator[str]) -> Iterator[str]:
    yield head
    yield from rest
