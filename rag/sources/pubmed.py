"""PubMed exports → records: MEDLINE (`.nbib`, or the same saved as `.txt`) and efetch XML
(`<PubmedArticleSet>`), both with the standard library.

A structured abstract keeps its sections under their labels ("BACKGROUND: … RESULTS: …"), as
PubMed shows it. Records without an abstract are reported with their PMID.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from rag.sources.parsed import Rejected, _Rec, clean, iso_date, meta

_TAG = re.compile(r"^([A-Z][A-Z0-9]{0,3}) *- ?(.*)$")


def _medline_records(text: str) -> Iterator[list[tuple[str, str]]]:
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
                fields = []
        elif line.startswith("      ") and fields:  # a continuation line
            fields[-1] = (fields[-1][0], f"{fields[-1][1]} {line.strip()}")
        elif m := _TAG.match(line):
            fields.append((m.group(1), m.group(2).strip()))
    if fields:
        yield fields


def parse_medline(src: str, text: str) -> Iterator[_Rec | Rejected]:
    found = False
    for n, fields in enumerate(_medline_records(text), 1):
        tags: dict[str, list[str]] = {}
        for tag, value in fields:
            tags.setdefault(tag, []).append(value)
        if "PMID" not in tags and "TI" not in tags:
            continue  # a header or stray text between records
        found = True
        where = f"record {n}" + (f" (PMID {tags['PMID'][0]})" if "PMID" in tags else "")
        abstract = clean(" ".join(tags.get("AB", [])))
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        dp = (tags.get("DP") or [""])[0].split()
        authors = tags.get("FAU") or tags.get("AU")
        date = iso_date(*(dp + ["", ""])[:3])
        doi = next((v.split()[0] for v in tags.get("LID", []) + tags.get("AID", []) if v.endswith("[doi]")), None)
        yield _Rec(clean(" ".join(tags.get("TI", []))), abstract, src, where,
                   authors=len(authors) if authors else None, date=date,
                   meta=meta(authors, date and date[:4], (tags.get("JT") or tags.get("TA") or [None])[0], doi,
                             None, {"pmid": (tags.get("PMID") or [None])[0]}, tags.get("OT") or tags.get("MH")))
    if not found:
        yield Rejected(src, "file", "no MEDLINE records (lines like 'PMID- …', 'TI  - …', 'AB  - …')")


def parse_xml(src: str, text: str) -> Iterator[_Rec | Rejected]:
    import xml.etree.ElementTree as ET  # entities are not fetched; expat refuses entity-expansion bombs

    try:
        root = ET.fromstring(text.encode())
    except ET.ParseError as e:
        yield Rejected(src, f"line {e.position[0]}", f"not well-formed XML ({e})")
        return
    articles = root.findall(".//PubmedArticle")
    if not articles:
        yield Rejected(src, "file", "no <PubmedArticle> in this XML")
    for n, article in enumerate(articles, 1):
        pmid = article.findtext(".//MedlineCitation/PMID") or ""
        where = f"article {n}" + (f" (PMID {pmid})" if pmid else "")
        sections = []
        for part in article.findall(".//Article/Abstract/AbstractText"):
            body = clean("".join(part.itertext()))
            label = part.get("Label")
            sections.append(f"{label}: {body}" if label and body else body)
        abstract = clean(" ".join(s for s in sections if s))
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        heading = article.find(".//Article/ArticleTitle")
        title = clean("".join(heading.itertext())) if heading is not None else ""
        pub = article.find(".//Article/Journal/JournalIssue/PubDate")
        date = None
        if pub is not None:
            date = iso_date(pub.findtext("Year") or "", pub.findtext("Month") or "", pub.findtext("Day") or "")
            date = date or iso_date(*((pub.findtext("MedlineDate") or "").split() + ["", ""])[:3])
        authors = article.findall(".//Article/AuthorList/Author")
        names = [" ".join(x for x in (a.findtext("ForeName"), a.findtext("LastName")) if x)
                 or a.findtext("CollectiveName") for a in authors]
        dois = [e.text for e in article.findall(".//ArticleIdList/ArticleId") if e.get("IdType") == "doi"]
        dois += [e.text for e in article.findall(".//Article/ELocationID") if e.get("EIdType") == "doi"]
        doi = next(iter(dois), None)
        yield _Rec(title, abstract, src, where, authors=len(authors) or None, date=date,
                   meta=meta(names, date and date[:4], article.findtext(".//Article/Journal/Title"), doi, None,
                             {"pmid": pmid}, [k.text for k in article.findall(".//KeywordList/Keyword") if k.text]))
