"""What the source parsers yield: a record (`_Rec`) or a `Rejected`, and the text keys both sides share.

A module of its own so the parsers (`rag.sources.pages`, `.records`, `.bibtex`, `.ris`) and the loader
that dispatches to them and de-duplicates their records (`rag.sources`) can all import it without
importing each other in a circle.
`Rejected` is public through `rag.sources`; the rest is private to these modules.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rejected:
    source: str            # file
    location: str          # e.g. "line 12", "block 7", "record 3"
    reason: str


def clean(text: str) -> str:
    return " ".join(text.split())


def _norm(text: str) -> str:
    # Scrapes of one abstract differ in case, punctuation and spacing, never in letters (any script) or digits.
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def _digest(text: str, normalised: bool = False) -> bytes:
    # A digest, not the normalised text, keys the duplicate index so a big corpus is not held twice.
    return hashlib.sha1((text if normalised else _norm(text)).encode()).digest()


@dataclass
class _Rec:
    title: str
    abstract: str
    source: str
    where: str
    authors: int | None = None
    date: str | None = None
    own_id: str | None = None
    splits: dict[bytes, str] | None = None   # 000 layout: abstract digest -> title, for every plausible seam
    meta: dict = field(default_factory=dict)  # what `meta()` keeps: names, year, venue, doi, url, ids, keywords


def meta(authors: list[str] | None = None, year: object = None, venue: object = None, doi: object = None,
         url: object = None, ids: dict[str, object] | None = None, keywords: list[str] | None = None) -> dict:
    """A paper's bibliographic metadata, the same keys from every format, empty values left out:
    authors (names), year (int), venue, doi (bare and lower-case: 10.x/y), url, ids (arxiv, pmid,
    openalex, s2, …) and keywords."""
    out: dict = {}
    names = [clean(str(a)) for a in authors or [] if a and clean(str(a))]
    if names:
        out["authors"] = names
    if year is not None and re.fullmatch(r"\d{4}", str(year).strip()[:4]):
        out["year"] = int(str(year).strip()[:4])
    if venue and clean(str(venue)):
        out["venue"] = clean(str(venue))
    if doi and (bare := re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", clean(str(doi)), flags=re.I)):
        out["doi"] = bare.lower()
    if url and str(url).startswith(("http://", "https://")):
        out["url"] = clean(str(url))
    if ids := {k: clean(str(v)) for k, v in (ids or {}).items() if v not in (None, "")}:
        out["ids"] = ids
    if words := [clean(str(k)) for k in keywords or [] if k and clean(str(k))]:
        out["keywords"] = words
    return out


def identifiers(paper_meta: dict) -> list[str]:
    """The keys under which two records are one paper whatever their text: DOI, arXiv id (without its
    version), PMID. An arXiv preprint and its journal version share them; their abstracts often differ."""
    ids = paper_meta.get("ids") or {}
    arxiv = re.sub(r"^(arxiv:)|v\d+$", "", str(ids.get("arxiv") or "").strip().lower())
    pmid = str(ids.get("pmid") or "").strip()
    keys = [f"doi:{paper_meta['doi']}" if paper_meta.get("doi") else "", f"arxiv:{arxiv}" if arxiv else "",
            f"pmid:{pmid}" if pmid.isdigit() else ""]
    return [k for k in keys if k]


def same_work(title: str, other: str) -> bool:
    """Whether two titles can name one work: a shared DOI is trusted only as far as this (a book's
    DOI copied onto each of its chapters must not fold them into one paper)."""
    a, b = set(_norm(title).split()), set(_norm(other).split())
    return not a or not b or len(a & b) >= 0.5 * min(len(a), len(b))


def merge_meta(old: dict, new: dict) -> dict:
    """`old` with what only `new` has: the richer record fills the gaps, ids from both, the longer
    author list (a truncated "et al." export loses to a full one)."""
    out = {**new, **old}
    if new.get("ids") or old.get("ids"):
        out["ids"] = {**new.get("ids", {}), **old.get("ids", {})}
    if len(new.get("authors", [])) > len(old.get("authors", [])):
        out["authors"] = new["authors"]
    return out


# Below and above these an "abstract" is not one: a stub ("No abstract available.") or a full text
# (a 2-million-word field took more than 20 minutes to embed). Checked on every record of every format.
MIN_ABSTRACT, MAX_ABSTRACT = 50, 20_000
# A field-tag header row read as a record: "PT AU TI SO AB PY DI UT" (Web of Science), "TY AU TI" (RIS).
_TAGS = re.compile(r"(?:[A-Z][A-Z0-9]{1,2}\s+){2,}[A-Z][A-Z0-9]{1,2}")
_COLUMN_NAMES = {"title", "abstract", "article title", "document title", "authors", "author", "year", "doi"}


def junk(title: str, abstract: str) -> str | None:
    """Why a record is not a paper, or None: it is rejected with this reason, never ingested."""
    if _TAGS.fullmatch(title.strip()) or _norm(title) in _COLUMN_NAMES or _norm(abstract) in _COLUMN_NAMES:
        return f"looks like a header row, not a paper (title {title[:40]!r})"
    if len(abstract) < MIN_ABSTRACT:
        return f"abstract too short ({len(abstract)} characters, at least {MIN_ABSTRACT}): {abstract[:40]!r}"
    if len(abstract) > MAX_ABSTRACT:
        return (f"abstract too long ({len(abstract):,} characters, at most {MAX_ABSTRACT:,}): a full text "
                "or a runaway field, not an abstract")
    return None


def _not_utf8(data: bytes, start: int, base: int = 0) -> str:
    return f"not UTF-8 text (byte 0x{data[start]:02x} at offset {base + start})"


_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def iso_date(year: str, month: str = "", day: str = "") -> str | None:
    """'2006', 'Mar', '1' → '2006-03-01' (as far as given); None without a four-digit year."""
    if not re.fullmatch(r"\d{4}", year or ""):
        return None
    month = _MONTHS.get(month[:3].lower(), month.zfill(2) if month.isdigit() else "")
    return "-".join([year, *([month] if month else []), *([day.zfill(2)] if month and day.isdigit() else [])])
