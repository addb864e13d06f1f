"""Zotero's own database (`~/Zotero/zotero.sqlite`) → records, read with the standard library's sqlite3.

Zotero keeps the file open with `PRAGMA locking_mode=EXCLUSIVE`, so while it runs an ordinary reader
only gets "database is locked". The file is therefore opened read-only and `immutable=1`, which makes
SQLite take no locks at all: we read the last committed state and never write. Everything is read
before the first record is yielded, so a damaged file gives one `Rejected`, not half a library.

Field, item-type and creator-type names come from the database's own tables (a fresh Zotero 7
database numbers them in the order of its bundled schema.json; one upgraded from Zotero 5 keeps the
old numbers), never from fixed ids. Trashed items, attachments, notes, annotations and RSS-feed
items are not papers; a regular item without an abstract is reported once.
"""
from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from rag.sources.parsed import Rejected, _Rec, clean, iso_date, meta

_NOT_PAPERS = ("attachment", "note", "annotation")
_WANTED = ("title", "abstractNote", "date", "publicationTitle", "DOI", "url", "extra", "archiveID")
_BASES = ("title", "date", "publicationTitle")  # proceedingsTitle, bookTitle, … are read as publicationTitle
_EXTRA_ID = re.compile(r"^\s*(arXiv|PMID|PMCID|DOI)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def parse(src: str, path: Path) -> Iterator[_Rec | Rejected]:
    try:
        items = _read(path)
    except _NotZotero as e:
        yield Rejected(src, "file", str(e))
        return
    except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed", …
        yield Rejected(src, "file", f"damaged or unreadable SQLite database ({e})")
        return
    if not items:
        yield Rejected(src, "file", "no papers in this Zotero library")
    for key, fields, authors, tags in items:
        title = clean(fields.get("title", ""))
        where = f"item {key}" + (f" ({title[:60]})" if title else "")
        abstract = clean(fields.get("abstractNote", ""))
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        extra = {k.lower(): v for k, v in _EXTRA_ID.findall(fields.get("extra", ""))}
        archive = fields.get("archiveID", "")
        arxiv = archive[6:] if archive.lower().startswith("arxiv:") else extra.get("arxiv", "")
        date = _date(fields.get("date", ""))
        yield _Rec(title, abstract, src, where, authors=len(authors) or None, date=date,
                   meta=meta(authors, date and date[:4], fields.get("publicationTitle"),
                             fields.get("DOI") or extra.get("doi"), fields.get("url"),
                             {"zotero": key, "arxiv": arxiv, "pmid": extra.get("pmid"),
                              "pmcid": extra.get("pmcid")}, tags))


class _NotZotero(Exception):
    pass


def _read(path: Path) -> list[tuple[str, dict[str, str], list[str], list[str]]]:
    """(key, {field: value}, author names, tags) for every item that could be a paper, in the order added."""
    uri = f"file:{quote(path.absolute().as_posix())}?mode=ro&immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as con:
        con.text_factory = lambda b: b.decode("utf-8", "replace")  # one bad byte must not cost the library
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"items", "itemData", "itemDataValues"} <= tables:
            raise _NotZotero("an SQLite database, but not a Zotero library (no items/itemData tables)")
        # Zotero reads names from the *Combined tables (built-in plus custom types and fields), which it
        # refills at startup; its own integrity check allows for finding them empty.
        types, fields, bases = (f"{t}Combined" if f"{t}Combined" in tables and con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {t}Combined)").fetchone()[0] else t
            for t in ("itemTypes", "fields", "baseFieldMappings"))
        skip = " ".join(f"AND i.itemID NOT IN (SELECT itemID FROM {t})"
                        for t in ("deletedItems", "feedItems") if t in tables)
        rows = con.execute(f"SELECT i.itemID, i.key FROM items i JOIN {types} t USING (itemTypeID) "
                           f"WHERE t.typeName NOT IN (?, ?, ?) {skip} ORDER BY i.itemID", _NOT_PAPERS).fetchall()
        alias = {name: base for name, base in con.execute(
            f"SELECT f.fieldName, b.fieldName FROM {bases} m JOIN {fields} f ON f.fieldID = m.fieldID "
            f"JOIN {fields} b ON b.fieldID = m.baseFieldID") if base in _BASES}
        names = [*_WANTED, *alias]
        values: dict[int, dict[str, str]] = defaultdict(dict)
        for item, name, value in con.execute(
                f"SELECT d.itemID, f.fieldName, v.value FROM itemData d JOIN {fields} f USING (fieldID) "
                f"JOIN itemDataValues v USING (valueID) WHERE f.fieldName IN ({','.join('?' * len(names))})",
                names):
            values[item][alias.get(name, name)] = str(value)
        authors: dict[int, list[str]] = defaultdict(list)
        if {"creators", "itemCreators", "creatorTypes"} <= tables:
            # Authors, or whoever is the item type's primary creator (a program's programmer); not editors.
            for item, first, last in con.execute(
                    "SELECT ic.itemID, c.firstName, c.lastName FROM itemCreators ic "
                    "JOIN creators c USING (creatorID) JOIN creatorTypes ct USING (creatorTypeID) "
                    "JOIN items i USING (itemID) WHERE ct.creatorType = 'author' OR ic.creatorTypeID IN "
                    "(SELECT creatorTypeID FROM itemTypeCreatorTypes WHERE itemTypeID = i.itemTypeID "
                    "AND primaryField = 1) ORDER BY ic.itemID, ic.orderIndex"):
                # A one-field name ("OpenAI", fieldMode 1) is kept in lastName, with firstName ''.
                authors[item].append(clean(f"{first or ''} {last or ''}"))
        tags: dict[int, list[str]] = defaultdict(list)
        if {"tags", "itemTags"} <= tables:
            for item, name in con.execute("SELECT it.itemID, t.name FROM itemTags it JOIN tags t USING (tagID) "
                                          "ORDER BY it.itemID, t.name COLLATE NOCASE"):
                tags[item].append(name)
    return [(key, values.get(item, {}), authors.get(item, []), tags.get(item, [])) for item, key in rows]


def _date(value: str) -> str | None:
    """Zotero's stored date, "2019-10-00 Oct 2019" (a sortable date with 00 for what is unknown, then
    what the user typed) → "2019-10"; a plain "2019-10-05" is taken as it is."""
    m = re.match(r"(\d{4})(?:-(\d\d)(?:-(\d\d))?)?", value.strip())
    if not m or m.group(1) == "0000":
        return None
    month = m.group(2) if m.group(2) not in (None, "00") else ""
    return iso_date(m.group(1), month, m.group(3) if month and m.group(3) != "00" else "")
