"""JSON lines, JSON documents (CSL-JSON, OpenAlex and Semantic Scholar responses), CSV and TSV files (a
BEIR corpus.jsonl among them) → records; lines and rows are streamed.

Fields are found by name (`abstract`/`text`/…, `title`/`name`, `_id`/`paper_id`/`id`); a line that cannot be
decoded, parsed or read as a paper comes back as a `Rejected` with its line number.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.sources.parsed import Rejected, _not_utf8, _Rec, clean, meta

# `abstract_inverted_index`: OpenAlex stores an abstract as {word: [positions]}.
_TITLE_KEYS = ("title", "name")
_ABSTRACT_KEYS = ("abstract", "text", "summary", "body", "abstract_inverted_index")
_ABSTRACT_NAMED = "/".join(_ABSTRACT_KEYS[:4])  # what a reject asks for: the names people write
# Where API responses keep their records: OpenAlex `results`, Semantic Scholar search `data`.
_CONTAINERS = ("results", "data", "items", "records", "papers")
_ID_KEYS = ("_id", "paper_id", "id")


def _pick(keys: Iterable[str], aliases: tuple[str, ...]) -> str | None:
    lower = {k.strip().lower(): k for k in keys}
    return next((lower[a] for a in aliases if a in lower), None)


def _no_schema(keys: Iterable[str], what: str = "field", saw: str = "fields") -> str:
    return f"no abstract {what} (saw {saw}: {', '.join(keys) or 'none'}); expected one of {_ABSTRACT_NAMED}"


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
    """ISO date (or year) from the fields exports use: date, published, publication_date (OpenAlex),
    publicationDate and year (Semantic Scholar), issued.date-parts (CSL-JSON)."""
    for key in ("date", "published", "publication_date", "publicationDate", "year", "publication_year"):
        value = obj.get(key)
        value = str(value) if type(value) is int else value
        if isinstance(value, str) and re.match(r"\d{4}(-\d\d(-\d\d)?)?$", value[:10]):
            return value[:10]
    issued = obj.get("issued")
    parts = issued.get("date-parts") if isinstance(issued, dict) else None
    if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
        ymd = [p for p in parts[0][:3] if type(p) is int or (isinstance(p, str) and p.isdigit())]
        if ymd and len(str(ymd[0])) == 4:
            return "-".join([str(ymd[0]), *(str(p).zfill(2) for p in ymd[1:])])
    return None


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
    names = _names(_get(obj, "authors", "author", "authorships"))
    people = _get(obj, "authors", "author", "authorships")
    authors = len(names) if names else people if type(people) is int else None
    return _Rec(title, abstract, src, where, own_id=own_id or None, date=date, authors=authors,
                meta=_meta(obj, names, date))


def _get(obj: dict[str, object], *aliases: str) -> object:
    key = _pick(obj, tuple(a.lower() for a in aliases))
    return obj[key] if key else None


def _names(people: object) -> list[str]:
    """Author names from a list of strings, of CSL-JSON {family, given}, Semantic Scholar {name} or
    OpenAlex {author: {display_name}} objects, or one string ("A; B" from CSV, "A, B and C" from arXiv)."""
    if isinstance(people, str):
        parts = people.split(";") if ";" in people else re.split(r",\s*|\s+and\s+", people)
        return [clean(p) for p in parts if clean(p)]
    names = []
    for person in people if isinstance(people, list) else []:
        if isinstance(person, dict):
            person = person.get("author", person) if isinstance(person.get("author"), dict) else person
            person = (person.get("name") or person.get("display_name") or person.get("literal")
                      or " ".join(str(person[k]) for k in ("given", "family") if person.get(k)))
        if isinstance(person, str) and clean(person):
            names.append(clean(person))
    return names


def _meta(obj: dict[str, object], names: list[str], date: str | None) -> dict:
    """Venue, DOI, URL, ids and keywords under the names CSL-JSON, OpenAlex, Semantic Scholar, the
    arXiv snapshot and Zotero's or Scopus's CSV give them."""
    external = _get(obj, "externalIds") if isinstance(_get(obj, "externalIds"), dict) else {}
    where = _get(obj, "primary_location") if isinstance(_get(obj, "primary_location"), dict) else {}
    source = where.get("source") if isinstance(where.get("source"), dict) else {}
    venue = (_get(obj, "container-title", "venue", "journal", "publicationTitle", "publication title",
                  "source title", "journal-ref") or source.get("display_name"))
    openalex = str(_get(obj, "id") or "")
    ids = {"s2": _get(obj, "paperId"), "arxiv": external.get("ArXiv"), "pmid": external.get("PubMed"),
           "openalex": openalex.rsplit("/", 1)[-1] if "openalex.org/" in openalex else None}
    keywords = _get(obj, "keywords", "keyword", "manual tags", "author keywords")
    if isinstance(keywords, str):
        keywords = re.split(r"\s*[;,]\s*", keywords)
    return meta(names, date and date[:4], venue if isinstance(venue, str) else None,
                _get(obj, "doi") or external.get("DOI"), _get(obj, "url") or where.get("landing_page_url"),
                ids, keywords if isinstance(keywords, list) else None)


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


def _json_document(path: Path) -> Iterator[tuple[str, object] | Rejected]:
    """One JSON document: an array of records (CSL-JSON), an API response holding them (OpenAlex
    `results`, Semantic Scholar `data`), or a single record, pretty-printed or not."""
    data = path.read_bytes()
    try:
        document = json.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as e:
        yield Rejected(str(path), "file", _not_utf8(data, e.start))
        return
    except json.JSONDecodeError as e:
        yield Rejected(str(path), f"line {e.lineno}", f"invalid JSON: {e.msg}")
        return
    if isinstance(document, dict):
        inner = next((k for k in _CONTAINERS if isinstance(document.get(k), list)), None)
        document = document[inner] if inner and not _pick(document, _ABSTRACT_KEYS) else [document]
    if not isinstance(document, list):
        yield Rejected(str(path), "file", f"expected JSON records, got {type(document).__name__}")
        return
    for n, item in enumerate(document, 1):
        yield f"record {n}", item


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
