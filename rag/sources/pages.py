"""Seed text pages → records: Daily Papers blocks, a paper a line (000), abstracts ended by "translated by" (003).

`_parse_page` tells the layouts apart; `split_title` guesses the title/abstract seam of the 000 layout, where
the two are run together. A block or line that is not a paper comes back as a `Rejected` with its line number.
"""
from __future__ import annotations

import datetime
import re
from collections import Counter

from rag.sources.parsed import Rejected, _digest, _Rec, clean

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_DATE = rf"(?P<mon>{'|'.join(_MONTHS)}) (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?: \d+)?"   # then upvotes
_FOOTER = re.compile(rf"•\s*(?P<authors>\d+) authors?|(?P<dot>·)|{_DATE}")
_ORDER = "authors dot date"   # of a block's footer lines
_ONE_LINE = re.compile(rf"(?:-|\d+)\s+(?P<body>.+?)\s+(?P<authors>\d+) authors? · {_DATE}")
_SEPARATOR = re.compile(r"translated by\b.*")
_CHROME = frozenset({"new", "get trending papers in your email inbox!", "subscribe", "daily papers",  # casefolded
                     "byak and the research community", "by ak and the research community"})


def _iso(m: re.Match[str]) -> str | None:
    try:   # no year ("Feb 3") means the page's own year, which the scrape does not record
        return datetime.date(int(m["year"]), _MONTHS.index(m["mon"]) + 1, int(m["day"])).isoformat()
    except (TypeError, ValueError):
        return None


# --- title/abstract seam for the 000 layout ---------------------------------------------------------------------
# Weights were tuned on the other seed pages' 172 title+abstract pairs run together: 166 seams are found again.
_PUNCT = "()[]{}\"'“”‘’,;:.!?"
_SMALL = frozenset("a an and as at but by for from in into is of on or over per than the to under via vs with without "
                   "between".split())
_STARTS = frozenset("a an the we our this these in it its while although despite however there recently".split())
_ACRONYM = re.compile(r"\([\w-]*[A-Z][\w-]*[A-Z][\w-]*\)[,.;:]?")


def _case(word: str) -> tuple[str, bool]:
    """Case of the word's head ("cap", "low", "other") and whether a later hyphen part is lower case."""
    parts = [p for p in re.split(r"[-‐–]", word.strip(_PUNCT)) if p]
    if not parts or not parts[0][0].isalpha() or any(c.isupper() for c in parts[0][1:]):
        return "other", False   # numbers and acronyms (BERT, LoRA, GANs) say nothing about title style
    return ("cap" if parts[0][0].isupper() else "low"), any(p[0].islower() for p in parts[1:])


def _seam_penalty(words: list[str], k: int, end: int) -> float:
    # A title is consistently Title Case or sentence case, does not end on "of"/"the" and seldom repeats a word.
    # An abstract's first sentence is sentence case, but for names spelled out before "(ABC)"; _STARTS words
    # capitalised inside it mean a new sentence began, so the seam is too far left.
    tc = sc = 0.0
    for i, w in enumerate(words[1:k], 1):
        case, low_tail = _case(w)
        bare, subtitle = w.strip(_PUNCT).lower(), words[i - 1].endswith((":", "?", "!"))
        tc += (case == "low" and bare not in _SMALL) + 0.5 * low_tail
        tc += case == "cap" and bare in _STARTS and not subtitle
        sc += case == "cap" and not subtitle
    repeats = sum(n - 1 for w, n in Counter(w.strip(_PUNCT).lower() for w in words[:k]).items() if w not in _SMALL)
    penalty = min(2 * tc, sc) + (words[k - 1].strip(_PUNCT).lower() in _SMALL) + 0.5 * repeats
    sentence, named = words[k + 1:end + 1], set()
    for j, w in enumerate(sentence):
        for q in range(j - 1, max(-1, j - 7), -1) if _ACRONYM.fullmatch(w) else ():
            if _case(sentence[q])[0] == "low" and sentence[q].strip(_PUNCT).lower() not in _SMALL:
                break
            named.add(q)
    for j, w in enumerate(sentence):
        if j not in named and _case(w)[0] == "cap":
            penalty += 3 if w.strip(_PUNCT).lower() in _STARTS else 0.75
    return penalty


def split_title(body: str) -> tuple[str, str, dict[bytes, str]]:
    """Guess where the title ends in "Title Abstract…" run together; also every other plausible seam."""
    words = body.split()
    end = next((i for i, w in enumerate(words) if re.search(r"[\w)\]]{2}\.$", w)
                and w.lower() not in {"al.", "etc.", "vs.", "fig.", "eq."}), len(words) - 1)
    seams = [k for k in range(1, min(end + 1, 40))
             if words[k][:1].isupper() or words[k][:1].isdigit() if not words[k - 1].endswith((":", "-"))]
    if not seams:
        return "", clean(body), {}
    best = min(seams, key=lambda k: (_seam_penalty(words, k, end), -k))
    return " ".join(words[:best]), " ".join(words[best:]), {_digest(" ".join(words[k:])): " ".join(words[:k])
                                                            for k in seams}


# --- text pages -------------------------------------------------------------------------------------------------
def _title_like(text: str) -> bool:
    return len(text) <= 300 and not re.search(r"\.\s+[A-Z]", text)


def _parse_page(src: str, text: str) -> list[_Rec | Rejected]:
    # split("\n"), not splitlines(): line numbers in rejects must match what an editor shows
    lines = [(n, clean(s)) for n, s in enumerate(text.split("\n"), 1) if s.strip()]
    body = [(n, s) for n, s in lines if s.casefold() not in _CHROME]
    out: list[_Rec | Rejected] = []
    if any(_SEPARATOR.fullmatch(s) for _, s in body):   # 003: each abstract is followed by "translated by …"
        buf: list[tuple[int, str]] = []
        for n, s in body:
            if not _SEPARATOR.fullmatch(s):
                buf.append((n, s))
            elif buf:
                out.append(_Rec("", clean(" ".join(t for _, t in buf)), src, f"line {buf[0][0]}"))
                buf = []
        if buf:   # no separator after it: the page may have been cut off mid-abstract
            out.append(Rejected(src, f"line {buf[0][0]}", "abstract without its 'translated by' line (truncated?)"))
    elif 2 * sum(bool(_ONE_LINE.fullmatch(s)) for _, s in body) >= len(body):   # 000: a paper a line
        for n, s in body:
            if m := _ONE_LINE.fullmatch(s):
                title, abstract, splits = split_title(m["body"])
                out.append(_Rec(title, abstract, src, f"line {n}", int(m["authors"]), _iso(m), splits=splits))
            else:
                out.append(Rejected(src, f"line {n}", "not a '<votes> <title> <abstract> N authors · <date>' line"))
    else:
        out = _parse_blocks(src, body, chrome=len(body) < len(lines))
    return out


def _parse_blocks(src: str, lines: list[tuple[int, str]], chrome: bool) -> list[_Rec | Rejected]:
    """Daily Papers: title / abstract / [• N authors] / [·] / [date] blocks, the page's own date on top."""
    out: list[_Rec | Rejected] = []
    texts: list[tuple[int, str]] = []
    footer: dict[str, re.Match[str]] = {}
    footers = False
    for n, s in lines:
        m = _FOOTER.fullmatch(s)
        if m is None:
            if footer:
                out += _blocks(src, texts, footer)
                texts, footer = [], {}
            texts.append((n, s))
            continue
        footers = True
        kind = "authors" if m["authors"] else "dot" if m["dot"] else "date"
        if not texts and not out and kind == "date":
            continue   # the page's own date ("Oct 28") under the chrome
        if not texts or any(_ORDER.index(k) >= _ORDER.index(kind) for k in footer):
            out.append(Rejected(src, f"line {n}", f"{kind} line without a title and abstract above it"))
        else:
            footer[kind] = m
    # With neither chrome nor footers any prose (a README) would pair up: take it only if it clearly does.
    pairs = zip(texts[::2], texts[1::2], strict=False)
    if not chrome and not footers and not (len(texts) % 2 == 0 and all(
            _title_like(t) and not _title_like(a) for (_, t), (_, a) in pairs)):
        return [Rejected(src, "file", "unrecognised text layout (expected a Daily Papers page, one paper a line, "
                                      "or abstracts separated by 'translated by')")]
    return out + _blocks(src, texts, footer)


def _blocks(src: str, texts: list[tuple[int, str]], footer: dict[str, re.Match[str]]) -> list[_Rec | Rejected]:
    out: list[_Rec | Rejected] = []
    i = 0
    while i < len(texts):
        (n, t), nxt = texts[i], texts[i + 1][1] if i + 1 < len(texts) else None
        # An even run is title/abstract pairs; an odd one lost a part, so the text's shape decides.
        if nxt is not None and (len(texts) % 2 == 0 or (_title_like(t) and not _title_like(nxt))):
            out.append(_Rec(t, nxt, src, f"line {n}"))
            i += 1
        else:
            out.append(Rejected(src, f"line {n}", "title without an abstract") if _title_like(t)
                       else _Rec("", t, src, f"line {n}"))
        i += 1
    if out and isinstance(out[-1], _Rec):
        out[-1].authors = int(footer["authors"]["authors"]) if "authors" in footer else None
        out[-1].date = _iso(footer["date"]) if "date" in footer else None
    return out

