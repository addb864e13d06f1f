"""BibTeX (as Zotero, JabRef, Mendeley and Better BibTeX write it) → records, parsed by bibtexparser 2.

LaTeX accents and `{Braced}` words are decoded to plain text; co-authors are split to count them. An
entry without an abstract is reported, not dropped silently: a reference manager's export often
holds papers whose abstract was never fetched.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from rag.sources.parsed import Rejected, _Rec, clean, meta

# What only a LaTeX decoder reads right: commands and accents, math, `~`, dashes, TeX quotes. A bare
# `%` is not among them: LaTeX would read it as a comment ("5% over the baseline" lost all after the 5),
# but in a BibTeX abstract it is a per cent sign. Escaped `\% \& \_ \# \$` need no decoder either.
_LATEX = re.compile(r"[\\$~]|--|``|''")
_ESCAPED = re.compile(r"\\([%&_#$])")


@functools.cache
def _decoder():
    """bibtexparser's LatexDecodingMiddleware decoder (pylatexenc; a url macro as its text, math kept)."""
    import pylatexenc.latex2text as l2t

    db = l2t.get_default_latex_context_db()
    db.add_context_category("rag-bibtex", prepend=True, macros=[l2t.MacroTextSpec("url", simplify_repl="%s")])
    return l2t.LatexNodes2Text(latex_context=db, keep_braced_groups=False, math_mode="verbatim")


def _text(value: str) -> str:
    """A field as plain text. Only the fields rag keeps are decoded, and only those with LaTeX in them
    go through pylatexenc: decoding every field of every entry took 98% of a 2,000-entry parse."""
    if not _LATEX.search(_ESCAPED.sub("", value)):
        return clean(_ESCAPED.sub(r"\1", value).replace("{", "").replace("}", ""))   # {Braced} keep their case
    return clean(_decoder().latex_to_text(re.sub(r"(?<!\\)%", r"\\%", value)))


def parse(src: str, text: str) -> Iterator[_Rec | Rejected]:
    import bibtexparser
    from bibtexparser.middlewares.names import split_multiple_persons_names

    library = bibtexparser.parse_string(text)
    for block in library.failed_blocks:
        yield Rejected(src, f"line {block.start_line + 1}", f"not a BibTeX entry ({type(block).__name__})")
    if not library.entries and not library.failed_blocks:
        yield Rejected(src, "file", "no BibTeX entries")
    for entry in library.entries:
        fields = {k.lower(): str(v.value) for k, v in entry.fields_dict.items()}
        where = f"entry {entry.key}"

        def value(name: str, default: str | None = None, fields: dict[str, str] = fields) -> str | None:
            return _text(fields[name]) if name in fields else default

        abstract = value("abstract", "")
        if not abstract:
            yield Rejected(src, where, "no abstract")
            continue
        names = split_multiple_persons_names(fields["author"]) if "author" in fields else None
        people = [_text(name) for name in names] if names else None
        date = value("date") or value("year") or ""
        keywords = re.split(r"\s*[;,]\s*", value("keywords") or "")
        ids = {"arxiv": value("eprint") if (value("archiveprefix") or "").lower() == "arxiv" else None,
               "pmid": value("pmid"), "isbn": value("isbn")}
        yield _Rec(value("title", ""), abstract, src, where, authors=len(people) if people else None,
                   date=date[:10] if re.match(r"\d{4}(-\d\d(-\d\d)?)?$", date[:10]) else None,
                   meta=meta(people, date[:4], value("journal") or value("journaltitle") or value("booktitle"),
                             value("doi"), value("url"), ids, keywords))
