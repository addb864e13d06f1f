"""RIS (Zotero, EndNote, Scopus, PubMed exports) → records, parsed by rispy.

Records without an abstract (`AB`/`N2`) are reported with their position, never dropped silently.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from rag.sources.parsed import Rejected, _Rec, clean, meta


def parse(src: str, text: str) -> Iterator[_Rec | Rejected]:
    import rispy

    try:
        entries = rispy.loads(text)
    except (OSError, ValueError, KeyError) as e:  # rispy raises IOError for text that is not RIS
        yield Rejected(src, "file", f"not RIS ({e})")
        return
    if not entries:
        yield Rejected(src, "file", "no RIS records")
    for n, entry in enumerate(entries, 1):
        title = clean(str(entry.get("title") or entry.get("primary_title") or ""))
        abstract = clean(str(entry.get("abstract") or entry.get("notes_abstract") or ""))
        where = f"record {n}" + (f" ({title[:60]})" if title else "")
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        people = entry.get("authors") or entry.get("first_authors")
        # RIS dates read "2019///" or "2011/06/15": year, month, day, each optional.
        date = None
        for raw in (entry.get("date"), entry.get("year")):  # EndNote's DA may be just "Jun"
            parts = [p for p in re.split(r"[/-]", str(raw or "")) if p.isdigit()]
            if parts and len(parts[0]) == 4:
                date = "-".join([parts[0], *(p.zfill(2) for p in parts[1:3])])
                break
        urls = entry.get("urls") or ([entry["url"]] if entry.get("url") else [])
        yield _Rec(title, abstract, src, where, authors=len(people) if isinstance(people, list) else None,
                   date=date, meta=meta(people if isinstance(people, list) else None, date and date[:4],
                                        entry.get("journal_name") or entry.get("secondary_title"),
                                        entry.get("doi"), urls[0] if urls else None,
                                        {"accession": entry.get("accession_number")}, entry.get("keywords")))
