"""JSON lines, CSV and TSV files (a BEIR corpus.jsonl among them) → records, streamed line by line.

Fields are found by name (`abstract`/`text`/…, `title`/`name`, `_id`/`paper_id`/`id`); a line that cannot be
decoded, parsed or read as a paper comes back as a `Rejected` with its line number.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.parsed import Rejected, _not_utf8, _Rec, clean

_TITLE_KEYS, _ABSTRACT_KEYS = ("title", "name"), ("abstract", "text", "summary", "body")
_ID_KEYS = ("_id", "paper_id", "id")


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
