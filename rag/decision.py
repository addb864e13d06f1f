"""Answer, partial or refuse: one decision for every backend, made from what retrieval found.

Evidence, all computed without a model call:
- **dense**: the best chunk's cosine similarity to the question;
- **coverage**: the share of the question's key-term weight (IDF over the collection) that the
  retrieved papers contain;
- **name match**: a specific term of the question (a name such as "QuantMCU", an acronym, a term
  with digits) that is rare in the collection and found in a retrieved paper: the exact BM25 hit
  that a short "What is X?" question rests on while its cosine stays low;
- **missing**: the question's specific terms that no retrieved paper contains, with the absent
  words next to them ("MMLU benchmark", "Switch Transformer"). A term is specific when it is
  written like a name: capitals inside it or after the question's first word, or digits.

The outcome: **refuse** when none of dense, coverage or a name match says the papers are about the
question; **partial** when they are, but some specific term is missing (the answer names it); else
**answer**. Thresholds are settings, calibrated on `evals/near_miss.jsonl` and title-derived
questions (see evals/README.md).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Literal

Outcome = Literal["answer", "partial", "refuse"]

# Words that frame a question rather than say what it is about.
SCAFFOLD = frozenset("""what which who whom whose how why when where tell describ explain paper propos work
introduc mean main idea contribut summar summari overview list give find kind type doe did do can could would
should is are wa were about regard someth anyth method approach new novel me us pleas""".split())
_WORD = re.compile(r"\w+(?:[-.'’]\w+)*")
_NAME_LIKE = re.compile(r"[A-Za-z]*[A-Z][A-Za-z]*[A-Z]|\d|[a-z][A-Z]")  # QuantMCU, MNLI, vLLM, GPT-4


@dataclass
class Decision:
    outcome: Outcome
    missing: list[str] = field(default_factory=list)   # as written in the question, phrases joined
    evidence: dict[str, float | bool] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.outcome == "refuse"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Word:
    text: str            # as written
    position: int        # index among the question's words
    stems: list[str]
    df: int = 0
    found: bool = False      # in some retrieved paper
    answered: bool = False   # found, and a name: in the paper that holds most of the question's names
    specific: bool = False


def is_specific(word: str, initial: bool) -> bool:
    """Written like a name: capitals inside it or after the question's first word, or digits.
    (Counting every word no paper uses as well caught 95% of near misses, but also flagged a
    third of answerable questions for paraphrase words such as "flag", "lean" or "save".)"""
    return bool(_NAME_LIKE.search(word)) or (word[0].isupper() and not initial)


def names(question: str) -> set[str]:
    """The content terms (rag.text.terms) of the words the question writes like names."""
    from rag.text import terms

    spans = list(_WORD.finditer(question))
    return {t for i, m in enumerate(spans) if is_specific(m.group(0), i == 0) for t in terms(m.group(0))}


def _idf(df: int, n: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def decide(question: str, relevance: float | None, source_texts: list[str], tokenize, doc_freqs,
           dense_min: float, coverage_min: float, name_df_max: float) -> Decision:
    """`tokenize(texts) -> [[term]]` and `doc_freqs(terms) -> (papers, {term: papers with it})` are
    the BM25 index's own (`rag.store.BM25Index`), so a term means here what it means to BM25."""
    spans = list(_WORD.finditer(question))
    stems = tokenize([m.group(0) for m in spans]) if spans else []
    words = [_Word(m.group(0), i, [s for s in st if s not in SCAFFOLD]) for i, (m, st) in enumerate(zip(spans, stems))]
    words = [w for w in words if w.stems]
    dense = relevance if relevance is not None else -1.0
    if not words:  # nothing but question words: only the similarity can speak
        outcome: Outcome = "answer" if dense >= dense_min else "refuse"
        return Decision(outcome, [], {"dense": round(dense, 4), "coverage": 0.0, "name_match": False})

    per_source = [set(terms) for terms in tokenize(source_texts)]
    in_sources = set().union(*per_source)
    papers, freqs = doc_freqs(sorted({s for w in words for s in w.stems}))
    papers = max(papers, 1)
    for w in words:
        w.df = min(freqs.get(s, 0) for s in w.stems)
        w.found = w.answered = all(s in in_sources for s in w.stems)
        w.specific = is_specific(w.text, w.position == 0)
    # The names a question puts together must meet in one paper: "LoRA-GA ... on MMLU" is not
    # answered by the LoRA-GA paper plus another that mentions MMLU.
    named = [w for w in words if w.specific]
    if named and per_source:
        meeting = max(per_source, key=lambda terms: sum(all(s in terms for s in w.stems) for w in named))
        for w in named:
            w.answered = all(s in meeting for s in w.stems)
    weights = [_idf(w.df, papers) for w in words]
    coverage = sum(wt for w, wt in zip(words, weights) if w.found) / sum(weights)
    name_match = any(w.found and w.specific and w.df <= max(1.0, name_df_max * papers) for w in words)
    missing = _phrases([w for w in words if not w.answered], question, spans)
    evidence = {"dense": round(dense, 4), "coverage": round(coverage, 4), "name_match": name_match}
    if not (dense >= dense_min or coverage >= coverage_min or name_match):
        return Decision("refuse", missing, evidence)
    return Decision("partial" if missing else "answer", missing, evidence)


def _phrases(absent: list[_Word], question: str, spans: list[re.Match]) -> list[str]:
    """Specific absent words, each with its absent neighbours: "MMLU benchmark", "Switch Transformer"."""
    runs: list[list[_Word]] = []
    for w in absent:
        if runs and runs[-1][-1].position == w.position - 1:
            runs[-1].append(w)
        else:
            runs.append([w])
    out = []
    for run in runs:
        if any(w.specific for w in run):
            out.append(question[spans[run[0].position].start():spans[run[-1].position].end()])
    return list(dict.fromkeys(out))


def missing_text(missing: list[str]) -> str:
    """"X", "X or Y", "X, Y or Z": how the answer names what no source covers."""
    quoted = [f"“{m}”" for m in missing]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def unreadable_script(script: str, model: str) -> str:
    """What rag says instead of answering a question its embedding model cannot read."""
    return (f"This question is written in {script} script, which the embedding model {model} does not read, "
            "so rag cannot tell which papers it is about. Ask in English, or index the collection with a "
            "multilingual model: set RAG_EMBED_MODEL to a local sentence-transformers directory.")


def describe(decision: str, evidence: dict, missing: list[str]) -> str:
    """One line on what a decision rested on, as the CLI and the UI show it."""
    if "script" in evidence:
        why = f"question in {evidence['script']} script"
    elif "dense" not in evidence:  # an answer made without retrieval's evidence (a test, an old result)
        return f"decision: {decision}"
    else:
        why = ", ".join([f"similarity {evidence['dense']:.2f}", f"term coverage {evidence['coverage']:.0%}"]
                        + (["name found"] if evidence.get("name_match") else []))
    return f"decision: {decision} ({why})" + (f"; not in the sources: {', '.join(missing)}" if missing else "")


def match_label(cosine: float | None, floor: float) -> str:
    """How well a paper matches a query, in words: its best passage's cosine similarity, judged
    against the similarity below which rag does not answer from it (`RAG_REFUSE_BELOW`). BM25 alone
    has no absolute scale, so a paper only it found is a keyword match. `--json` keeps the raw scores."""
    if cosine is None:
        return "keyword match"
    label = "strong" if cosine >= floor + 0.2 else "fair" if cosine >= floor else "weak"
    return f"{label} match {max(0, round(cosine * 100))}%"
