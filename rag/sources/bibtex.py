"""BibTeX (as Zotero, JabRef, Mendeley and Better BibTeX write it) → records, parsed by bibtexparser 2.

LaTeX accents and `{Braced}` words are decoded to plain text; co-authors are split to count them. An
entry without an abstract is reported, not dropped silently: a reference manager's export often
holds papers whose abstract was never fetched.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from rag.sources.parsed import Rejected, _Rec, clean, meta


def parse(src: str, text: str) -> Iterator[_Rec | Rejected]:
    import bibtexparser
    from bibtexparser import middlewares

    library = bibtexparser.parse_string(
        text, append_middleware=[middlewares.LatexDecodingMiddleware(), middlewares.SeparateCoAuthors()])
    for block in library.failed_blocks:
        yield Rejected(src, f"line {block.start_line + 1}", f"not a BibTeX entry ({type(block).__name__})")
    if not library.entries and not library.failed_blocks:
        yield Rejected(src, "file", "no BibTeX entries")
    for entry in library.entries:
        fields = {k.lower(): v for k, v in entry.fields_dict.items()}
        where = f"entry {entry.key}"
        value = {name: clean(str(field.value)) for name, field in fields.items()}.get
        abstract = value("abstract", "")
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        people = fields["author"].value if "author" in fields else None
        if isinstance(people, str):   # JabRef's `Author`: the co-author middleware splits only `author`
            from bibtexparser.middlewares.names import split_multiple_persons_names

            people = [clean(name) for name in split_multiple_persons_names(people)]
        people = people if isinstance(people, list) else None
        date = value("date") or value("year") or ""
        keywords = re.split(r"\s*[;,]\s*", value("keywords") or "")
        ids = {"arxiv": value("eprint") if (value("archiveprefix") or "").lower() == "arxiv" else None,
               "pmid": value("pmid"), "isbn": value("isbn")}
        yield _Rec(value("title", ""), abstract, src, where, authors=len(people) if people else None,
                   date=date[:10] if re.match(r"\d{4}(-\d\d(-\d\d)?)?$", date[:10]) else None,
                   meta=meta(people, date[:4], value("journal") or value("journaltitle") or value("booktitle"),
                             value("doi"), value("url"), ids, keywords))
