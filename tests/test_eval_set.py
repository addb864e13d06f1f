"""The retrieval/answer evaluation set (evals/questions.jsonl) is well-formed and its gold is real.

Fast: parses the seeds with `rag.sources.load` only (no model, no index). See evals/README.md.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import span_length_problem

from rag.sources import load

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals" / "questions.jsonl"
TYPES = {"lookup": 20, "number": 12, "keyword": 12, "multi": 8, "unanswerable": 12}   # type -> minimum count
MIN_TOTAL = 70
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    """paper_id -> whitespace-normalised 'title abstract' of every seed paper."""
    papers = load([ROOT / "seeds"]).papers
    assert papers, "no papers parsed from seeds/"
    return {p.paper_id: norm(f"{p.title} {p.abstract}") for p in papers}


@pytest.fixture(scope="module")
def abstracts() -> dict[str, str]:
    return {p.paper_id: norm(p.abstract) for p in load([ROOT / "seeds"]).papers}


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    out = []
    for n, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            pytest.fail(f"{QUESTIONS.name} line {n} is not JSON: {e}")
    return out


def papers_with(span: str, corpus: dict[str, str]) -> list[str]:
    span = norm(span)
    return [pid for pid, text in corpus.items() if span in text]


def test_every_line_has_the_schema(questions):
    for q in questions:
        assert set(q) <= {"id", "type", "question", "gold", "answer_contains", "missing", "note"}, q.get("id")
        assert {"id", "type", "question", "gold", "answer_contains"} <= set(q), q.get("id")
        assert re.fullmatch(r"q\d{3}", q["id"]), q["id"]
        assert q["type"] in TYPES, (q["id"], q["type"])
        assert isinstance(q["question"], str) and q["question"].strip(), q["id"]
        assert isinstance(q["gold"], list), q["id"]
        for g in q["gold"]:
            assert set(g) == {"paper_id", "span"}, (q["id"], g)
            assert isinstance(g["paper_id"], str) and isinstance(g["span"], str), (q["id"], g)
        assert isinstance(q["answer_contains"], list), q["id"]
        assert all(isinstance(a, str) and a.strip() for a in q["answer_contains"]), q["id"]
        assert isinstance(q.get("note", ""), str), q["id"]
        if "missing" in q:                   # what an unanswerable question asks for that no paper states
            assert q["type"] == "unanswerable", f"{q['id']}: only unanswerable questions carry missing"
            miss = q["missing"]
            assert isinstance(miss, list) and 1 <= len(miss) <= 3, f"{q['id']}: missing lists 1-3 terms"
            assert all(isinstance(m, str) and m.strip() for m in miss), f"{q['id']}: empty missing term"
            for m in miss:
                assert m.lower() in q["question"].lower(), f"{q['id']}: missing term {m!r} is not in the question"


def test_ids_and_questions_are_unique(questions):
    ids = Counter(q["id"] for q in questions)
    assert not [i for i, n in ids.items() if n > 1], "duplicate ids"
    texts = Counter(norm(q["question"]).lower() for q in questions)
    assert not [t for t, n in texts.items() if n > 1], "duplicate questions"


def test_counts_per_type_meet_the_minimums(questions):
    counts = Counter(q["type"] for q in questions)
    assert len(questions) >= MIN_TOTAL, len(questions)
    short = {t: (counts[t], m) for t, m in TYPES.items() if counts[t] < m}
    assert not short, f"type: (have, need) {short}"


def test_gold_sizes_fit_the_type(questions):
    for q in questions:
        n = len(q["gold"])
        if q["type"] == "unanswerable":
            assert n == 0, f"{q['id']}: unanswerable questions have empty gold"
        elif q["type"] == "multi":
            assert 2 <= n <= 6, f"{q['id']}: multi questions list 2-6 papers, not {n}"
        else:
            assert n >= 1, f"{q['id']}: {q['type']} questions need gold"
        pids = [g["paper_id"] for g in q["gold"]]
        assert len(set(pids)) == len(pids), f"{q['id']}: a paper is listed twice"


def test_spans_are_5_to_15_words(questions):
    problems = [span_length_problem(q["id"], g["span"]) for q in questions for g in q["gold"]]
    assert not any(problems), "\n".join(filter(None, problems))


def test_every_span_identifies_exactly_one_paper(questions, corpus):
    """The span alone must find the paper, so gold survives a re-parse that changes ids."""
    problems = []
    for q in questions:
        for g in q["gold"]:
            found = papers_with(g["span"], corpus)
            if len(found) != 1:
                problems.append(f"{q['id']}: span {g['span']!r} is in {len(found)} papers {found}")
    assert not problems, "\n".join(problems)


def test_every_gold_paper_id_exists_and_holds_its_span(questions, corpus):
    problems = []
    for q in questions:
        for g in q["gold"]:
            pid, span = g["paper_id"], norm(g["span"])
            if pid in corpus:
                if span not in corpus[pid]:
                    problems.append(f"{q['id']}: span {g['span']!r} not in the title+abstract of {pid}")
                continue
            found = papers_with(span, corpus)
            where = (f"the span identifies {found[0]} - update the id" if len(found) == 1
                     else f"and the span is in {len(found)} papers {found}")
            problems.append(f"{q['id']}: paper_id {pid} not in the parsed seeds; {where}")
    assert not problems, "\n".join(problems)


def test_answer_strings_occur_in_a_gold_abstract(questions, corpus, abstracts):
    problems = []
    for q in questions:
        if not q["answer_contains"]:
            assert q["type"] in {"keyword", "unanswerable"}, f"{q['id']}: {q['type']} questions need answer_contains"
            continue
        assert q["type"] != "unanswerable", f"{q['id']}: unanswerable questions have nothing to contain"
        # number/lookup: in the abstract itself; multi/keyword: title or abstract of some gold paper
        texts = abstracts if q["type"] in {"number", "lookup"} else corpus
        for a in q["answer_contains"]:
            if not any(norm(a) in texts.get(g["paper_id"], "") for g in q["gold"]):
                problems.append(f"{q['id']}: {a!r} is in no gold abstract")
    assert not problems, "\n".join(problems)


def test_number_answers_are_numbers(questions):
    for q in questions:
        if q["type"] == "number":
            assert q["answer_contains"] and all(re.search(r"\d", a) for a in q["answer_contains"]), q["id"]


def test_keyword_queries_are_2_to_4_words(questions):
    for q in questions:
        if q["type"] == "keyword":
            assert 2 <= len(q["question"].split()) <= 4, (q["id"], q["question"])


def test_the_set_covers_the_000_page_and_the_chinese_abstract(questions):
    papers = load([ROOT / "seeds"]).papers
    source = {p.paper_id: Path(p.source).name for p in papers}
    gold_ids = {g["paper_id"] for q in questions for g in q["gold"]}
    assert len({pid for pid in gold_ids if source.get(pid, "").startswith("000_")}) >= 2
    chinese = {p.paper_id for p in papers if _CJK.search(p.abstract)}
    assert any(q["type"] == "lookup" and {g["paper_id"] for g in q["gold"]} & chinese for q in questions)
