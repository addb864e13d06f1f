"""Small text helpers shared by the extractive answerer and the citation check."""
from __future__ import annotations

import functools
import re

# A sentence ends at . ! or ? (and any [n] citations right after it) before whitespace and a
# capital, digit or quote. Abbreviations such as "et al." or "e.g." are not sentence ends.
_SENTENCE_END = re.compile(r"(?<=[.!?])((?:\s*\[\d+(?:\s*[,\u2013-]\s*\d+)*\])*)\s+(?=[A-Z0-9\"'(\[])")
_NOT_END = re.compile(r"(?:\b(?:et al|e\.g|i\.e|etc|vs|Fig|Eq|cf|approx|resp)\.|\b[A-Z]\.)$")
_WORD = re.compile(r"\w+(?:[-.]\w+)*", re.UNICODE)
_NUMBER = re.compile(r"\d")

# bm25s' English list plus question words: they say what is asked, not what it is about.
STOPWORDS = frozenset("""a an and are as at be but by for if in into is it no not of on or such that the their then
there these they this to was will with we our us what which who whom how why when where does do did can could
would should has have had been being its from than also more most other some any each about over between both
using used use based paper papers study propose proposed show shows shown results result method approach
many much
""".split())


# Chinese and Japanese end sentences with full-width marks and no space after them.
_CJK_END = re.compile(r"(?<=[。！？])(?:\s*\[\d+(?:\s*[,\u2013-]\s*\d+)*\])*\s*")
# The script a question is written in, by its letters: (name, first, last code point).
_SCRIPTS = [("Latin", 0x41, 0x24F), ("Greek", 0x370, 0x3FF), ("Cyrillic", 0x400, 0x52F), ("Hebrew", 0x590, 0x5FF),
            ("Arabic", 0x600, 0x6FF), ("Devanagari", 0x900, 0x97F), ("Thai", 0xE00, 0xE7F),
            ("Japanese", 0x3040, 0x30FF), ("Chinese", 0x3400, 0x9FFF), ("Korean", 0xAC00, 0xD7AF)]


def script_of(text: str) -> str:
    """The script most of the text's letters are in ("Latin" when it has none)."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            code = ord(ch)
            name = next((n for n, lo, hi in _SCRIPTS if lo <= code <= hi), "other")
            counts[name] = counts.get(name, 0) + 1
    if counts.get("Japanese") and counts.get("Chinese"):  # kana among the kanji: Japanese
        counts["Japanese"] += counts.pop("Chinese")
    return max(counts, key=counts.get) if counts else "Latin"


def sentences(text: str) -> list[str]:
    """Split into sentences, keeping each sentence's trailing [n] citations with it."""
    cut = [m.end() for m in _CJK_END.finditer(text) if m.end() < len(text)]
    if cut:
        bounds = [0, *cut, len(text)]
        return [s for a, b in zip(bounds, bounds[1:]) for s in sentences(text[a:b])]
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if _NOT_END.search(text[start:match.start()]):
            continue
        parts.append(text[start:match.end(1)].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


@functools.lru_cache(maxsize=1)
def _stem():
    import Stemmer

    return Stemmer.Stemmer("english").stemWord


_ACRONYM_PLURAL = re.compile(r"[A-Z][A-Z0-9]+s")  # LLMs, GPUs: the stemmer leaves them as they are


def terms(text: str) -> list[str]:
    """Content words, lower-cased and stemmed; numbers kept as they are."""
    stem = _stem()
    out = []
    for word in _WORD.findall(text):
        word = (word[:-1] if _ACRONYM_PLURAL.fullmatch(word) else word).lower()
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        out.append(word if _NUMBER.search(word) else stem(word))
    return out


def has_number(text: str) -> bool:
    return bool(_NUMBER.search(text))


_NAME_PART = re.compile(r"^\s*([^:]{2,40}?)\s*:\s+\S")


def title_questions(title: str) -> list[tuple[str, str]]:
    """(form, question) as people ask about a paper with this title: "What is X?", "What does X
    propose?" and "Tell me about X" when it opens with a short name ("QuantMCU: ..."); "What does the
    paper “T” propose?" and "What is “T” about?"; its first longer words as a keyword query. The UI
    offers them as examples and `rag eval` checks that they are answered."""
    title = " ".join(title.split())
    if not title:
        return []
    asks = [("paper", f"What does the paper “{title}” propose?")]
    if len(title) <= 70:
        asks.append(("about", f"What is “{title}” about?"))
    name = _NAME_PART.match(title)
    if name and len(name.group(1).split()) <= 3:
        x = name.group(1)
        asks = [("propose", f"What does {x} propose?"), ("name", f"What is {x}?"), ("tell", f"Tell me about {x}"),
                *asks]
    keywords = [w for w in re.findall(r"[\w-]+", title.split(":")[-1]) if len(w) > 3][:4]
    if len(keywords) >= 2:
        asks.append(("keywords", " ".join(keywords).lower()))
    return asks


def _family(name: str) -> str:
    """'Hu, Edward J.' and 'Edward J. Hu' → 'Hu'."""
    return name.split(",", 1)[0].strip() if "," in name else name.split()[-1] if name.split() else name


def reference_label(meta: dict, date: str | None = None) -> str:
    """A paper as a reader cites it: "Hu et al. 2021 · Proc. ICLR · doi:10.x/y", from what is known."""
    names = meta.get("authors") or []
    who = (f"{_family(names[0])} et al." if len(names) > 2 else " and ".join(_family(n) for n in names))
    year = str(meta.get("year") or (date or "")[:4])
    head = " ".join(x for x in (who, year) if x)
    return " · ".join(x for x in (head, meta.get("venue"), f"doi:{meta['doi']}" if meta.get("doi") else "") if x)
