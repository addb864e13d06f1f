"""Citations after generation: parse [n], drop the ones that name no source, and score each
cited sentence against the abstract it cites.

Support is term recall: the share of the sentence's content words (stemmed) that the cited
abstract contains. It is cheap (no model call), explainable, and catches the failure users
report most: a citation that points at the wrong paper.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from rag.text import sentences, terms

CITATION = re.compile(r"\[(\d+(?:\s*[,\u2013-]\s*\d+)*)\]")
SUPPORT_THRESHOLD = 0.5  # below this share of content words found in the cited abstract: flagged


@dataclass
class Verdict:
    sentence: str        # the sentence without its citation marks
    cited: list[int]     # valid source numbers it cites; [] when it cites nothing
    support: float       # best term recall over the cited sources (0 when uncited)
    supported: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Checked:
    text: str                 # the answer with invalid citations removed
    verdicts: list[Verdict]
    removed: list[int]        # citation numbers that named no source

    @property
    def cited_numbers(self) -> list[int]:
        return sorted({n for v in self.verdicts for n in v.cited})


def expand(group: str) -> list[int]:
    """'1, 3-5' → [1, 3, 4, 5]."""
    out: list[int] = []
    for part in re.split(r"\s*,\s*", group):
        bounds = re.split(r"\s*[\u2013-]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 20 else [lo, hi])
        elif part.isdigit():
            out.append(int(part))
    return out


def strip_citations(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", CITATION.sub("", text)).strip()


def support(sentence: str, abstract_terms: set[str]) -> float:
    words = set(terms(sentence))
    return len(words & abstract_terms) / len(words) if words else 1.0


def check(answer: str, abstracts: list[str]) -> Checked:
    """`abstracts[i]` is the text of source i+1."""
    valid = range(1, len(abstracts) + 1)
    removed: list[int] = []

    def keep_valid(match: re.Match) -> str:
        numbers = expand(match.group(1))
        good = [n for n in numbers if n in valid]
        removed.extend(n for n in numbers if n not in valid)
        return "".join(f"[{n}]" for n in dict.fromkeys(good))

    cleaned = CITATION.sub(keep_valid, answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    source_terms = [set(terms(a)) for a in abstracts]
    verdicts = []
    for sentence in sentences(cleaned):
        cited = list(dict.fromkeys(n for g in CITATION.findall(sentence) for n in expand(g)))
        plain = strip_citations(sentence)
        if not terms(plain):
            continue  # "See below." and the like state nothing to check
        score = max((support(plain, source_terms[n - 1]) for n in cited), default=0.0)
        verdicts.append(Verdict(plain, cited, round(score, 3), bool(cited) and score >= SUPPORT_THRESHOLD))
    return Checked(cleaned.strip(), verdicts, sorted(set(removed)))
