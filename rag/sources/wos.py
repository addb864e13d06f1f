"""Web of Science exports → records: the plain-text export (`FN … Web of Science`, parsed by rispy's
WokParser) and the tab-delimited one (`PT<tab>AU<tab>…<tab>AB…`, read with `csv`).

Both are saved as `savedrecs.txt`: they are told apart from seed pages by their first line.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from rag.sources.parsed import Rejected, _Rec, clean, iso_date, meta


def _date(year: str, month_day: str = "") -> str | None:
    """PY '2004' with PD 'JUN 8' (or 'JUN', or nothing)."""
    return iso_date(year.strip(), *(month_day.split() + ["", ""])[:2])


def parse_plain(src: str, text: str) -> Iterator[_Rec | Rejected]:
    import rispy

    try:
        entries = rispy.loads(text, implementation=rispy.WokParser)
    except (OSError, ValueError, KeyError) as e:
        yield Rejected(src, "file", f"not a Web of Science plain-text export ({e})")
        return
    for n, entry in enumerate(entries, 1):
        title = clean(str(entry.get("document_title") or ""))
        where = f"record {n}" + (f" ({entry['accession_number']})" if entry.get("accession_number") else "")
        abstract = clean(str(entry.get("abstract") or ""))
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        people = entry.get("author_full_name") or entry.get("authors")
        people = people if isinstance(people, list) else None
        date = _date(str(entry.get("publication_year") or ""), str(entry.get("publication_date") or ""))
        yield _Rec(title, abstract, src, where, authors=len(people) if people else None, date=date,
                   meta=meta(people, date and date[:4], entry.get("publication_name"), entry.get("doi"), None,
                             {"wos": entry.get("accession_number"), "pmid": entry.get("pubmed_id")},
                             entry.get("keywords") or entry.get("keywords_plus")))


def parse_tab(src: str, text: str) -> Iterator[_Rec | Rejected]:
    rows = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    for n, row in enumerate(rows, 2):
        where = f"line {n}" + (f" ({row['UT']})" if row.get("UT") else "")
        abstract = clean(row.get("AB") or "")
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        people = [p for p in (row.get("AF") or row.get("AU") or "").split(";") if p.strip()]
        date = _date(row.get("PY") or "", row.get("PD") or "")
        yield _Rec(clean(row.get("TI") or ""), abstract, src, where, authors=len(people) or None, date=date,
                   meta=meta(people, date and date[:4], row.get("SO"), row.get("DI"), None,
                             {"wos": row.get("UT"), "pmid": row.get("PM")},
                             (row.get("DE") or "").split(";")))
