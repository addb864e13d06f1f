"""Cite back: the papers an answer cites, as references a reference manager imports (BibTeX via
bibtexparser, RIS via rispy, CSL-JSON), from the metadata their source files gave."""
from __future__ import annotations

import json
import re
from typing import Literal, get_args

from rag.answer import Answer, Source

CiteFormat = Literal["bibtex", "ris", "csl-json"]
CITE_FORMATS: tuple[str, ...] = get_args(CiteFormat)
CITE_SUFFIXES = {"bibtex": ".bib", "ris": ".ris", "csl-json": ".json"}  # what a reference manager opens


def cited_sources(answer: Answer) -> list[Source]:
    """The sources the checked answer cites, in their [n] order (none for a refusal)."""
    cited = {n for verdict in answer.citations for n in verdict.get("cited", [])}
    return [s for s in answer.sources if s.n in cited] if not answer.refused else []


def _split(name: str) -> tuple[str, str]:
    """'Hu, Edward J.' or 'Edward J. Hu' → ('Hu', 'Edward J.')."""
    if "," in name:
        family, given = name.split(",", 1)
        return family.strip(), given.strip()
    parts = name.split()
    return (parts[-1], " ".join(parts[:-1])) if parts else (name, "")


def _year(source: Source) -> int | None:
    year = source.meta.get("year") or (source.date or "")[:4]
    return int(year) if str(year).isdigit() else None


def _key(source: Source) -> str:
    """Zotero's style: first author's family name, first title word, year: bauer_wars_2014."""
    names = source.meta.get("authors") or []
    family = re.sub(r"\W", "", _split(names[0])[0].lower()) if names else "anon"
    word = next((w for w in re.findall(r"[a-z]+", source.title.lower()) if len(w) > 3), "paper")
    return "_".join(x for x in (family, word, str(_year(source) or "")) if x)


def references(sources: list[Source], fmt: CiteFormat) -> str:
    if fmt == "csl-json":
        items = []
        for s in sources:
            item: dict = {"id": s.paper_id, "type": "article-journal", "title": s.title,
                          "author": [dict(zip(("family", "given"), _split(n))) for n in s.meta.get("authors", [])]}
            if year := _year(s):
                item["issued"] = {"date-parts": [[int(p) for p in (s.date or str(year)).split("-")[:3]]
                                                 if (s.date or "").startswith(str(year)) else [year]]}
            for key, field in (("DOI", "doi"), ("URL", "url"), ("container-title", "venue")):
                if s.meta.get(field):
                    item[key] = s.meta[field]
            items.append(item)
        return json.dumps(items, ensure_ascii=False, indent=2)
    if fmt == "ris":
        import rispy

        class Plain(rispy.RisWriter):
            def set_header(self, count: int) -> None:  # rispy numbers records ("1."); importers expect TY first
                return None

        return rispy.dumps(implementation=Plain, references=[{k: v for k, v in {
            "type_of_reference": "JOUR", "title": s.title, "authors": s.meta.get("authors"),
            "year": str(_year(s) or "") or None, "secondary_title": s.meta.get("venue"),
            "doi": s.meta.get("doi"), "urls": [s.meta["url"]] if s.meta.get("url") else None,
        }.items() if v} for s in sources])
    import bibtexparser
    from bibtexparser.model import Entry, Field

    library = bibtexparser.Library()
    for s in sources:
        fields = {"title": s.title, "author": " and ".join(s.meta.get("authors", [])), "year": str(_year(s) or ""),
                  "journal": s.meta.get("venue"), "doi": s.meta.get("doi"), "url": s.meta.get("url")}
        library.add(Entry("article", _key(s), [Field(k, v) for k, v in fields.items() if v]))
    return bibtexparser.write_string(library)
