"""The near-miss evaluation set (evals/near_miss.jsonl) is well-formed and still true of the seeds.

Two kinds of row: `unanswerable` questions (nNNN) about a real neighbour paper that ask for something
no paper states (the `missing` terms), and `plain` answerable controls (pNNN) with gold spans.
Each row is in the `tune` or `heldout` split.
Fast: parses the seeds with `rag.sources.load` only (no model, no index).
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
NEAR_MISS = ROOT / "evals" / "near_miss.jsonl"
QUESTIONS = ROOT / "evals" / "questions.jsonl"
N_PAPERS = 186                       # the notes record grep hits over this many papers
UNANSWERABLE_KEYS = {"id", "type", "question", "neighbour", "missing", "split", "note"}
PLAIN_KEYS = {"id", "type", "question", "gold", "answer_contains", "split"}      # + optional "note"
SPLITS = {"tune", "heldout"}
MIN_UNANSWERABLE, MIN_PLAIN, MIN_NEIGHBOURS, MIN_HELDOUT = 45, 30, 30, 15
MAX_HELDOUT_RUN = 3
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
_RECORDED = re.compile(r"`([^`]+)`=(\d+)")        # `pattern`=hits, as the notes write them


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def term_regex(term: str) -> re.Pattern:
    """Case-insensitive, with a word boundary on each end that is a letter or digit."""
    t = re.escape(term)
    if term[:1].isalnum():
        t = r"\b" + t
    if term[-1:].isalnum():
        t += r"\b"
    return re.compile(t, re.I)


def read_jsonl(path: Path) -> list[dict]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            pytest.fail(f"{path.name} line {n} is not JSON: {e}")
    return out


@pytest.fixture(scope="module")
def papers():
    papers = load([ROOT / "seeds"]).papers
    assert len(papers) == N_PAPERS, f"expected {N_PAPERS} parsed papers, got {len(papers)}"
    return papers


@pytest.fixture(scope="module")
def corpus(papers) -> dict[str, str]:
    """paper_id -> whitespace-normalised 'title abstract' of every seed paper."""
    return {p.paper_id: norm(f"{p.title} {p.abstract}") for p in papers}


@pytest.fixture(scope="module")
def source(papers) -> dict[str, str]:
    """paper_id -> name of the seed file it came from (000_..., 001_..., ...)."""
    return {p.paper_id: Path(str(p.source)).name for p in papers}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return read_jsonl(NEAR_MISS)


@pytest.fixture(scope="module")
def unanswerable(rows) -> list[dict]:
    return [r for r in rows if r.get("type") == "unanswerable"]


@pytest.fixture(scope="module")
def plain(rows) -> list[dict]:
    return [r for r in rows if r.get("type") == "plain"]


@pytest.fixture(scope="module")
def main_questions() -> list[dict]:
    return read_jsonl(QUESTIONS)


def test_every_row_has_the_schema(rows):
    for r in rows:
        rid = r.get("id")
        assert r.get("type") in {"unanswerable", "plain"}, (rid, r.get("type"))
        assert isinstance(r.get("question"), str) and r["question"].strip(), rid
        assert r.get("split") in SPLITS, (rid, r.get("split"))
        assert isinstance(r.get("note", ""), str), rid
        if r["type"] == "unanswerable":
            assert set(r) == UNANSWERABLE_KEYS, (rid, sorted(r))
            assert re.fullmatch(r"n\d{3}", rid), f"{rid}: unanswerable ids are nNNN"
            assert isinstance(r["neighbour"], str), rid
            miss = r["missing"]
            assert isinstance(miss, list) and 1 <= len(miss) <= 3, f"{rid}: missing lists 1-3 terms"
            assert all(isinstance(m, str) and m.strip() for m in miss), f"{rid}: empty missing term"
        else:
            assert PLAIN_KEYS <= set(r) <= PLAIN_KEYS | {"note"}, (rid, sorted(r))
            assert re.fullmatch(r"p\d{3}", rid), f"{rid}: plain ids are pNNN"
            assert r["answer_contains"] == [], f"{rid}: plain rows have answer_contains []"
            assert isinstance(r["gold"], list) and r["gold"], f"{rid}: plain rows need gold"
            for g in r["gold"]:
                assert set(g) == {"paper_id", "span"}, (rid, g)
                assert isinstance(g["paper_id"], str) and isinstance(g["span"], str), (rid, g)
            pids = [g["paper_id"] for g in r["gold"]]
            assert len(set(pids)) == len(pids), f"{rid}: a paper is listed twice"


def test_ids_and_questions_are_unique_and_new(rows, main_questions):
    ids = Counter(r["id"] for r in rows)
    assert not [i for i, n in ids.items() if n > 1], f"duplicate ids {[i for i, n in ids.items() if n > 1]}"
    main_ids = {q["id"] for q in main_questions}
    clash = [r["id"] for r in rows if r["id"] in main_ids]
    assert not clash, f"ids also used in questions.jsonl: {clash}"
    texts = Counter(norm(r["question"]).lower() for r in rows)
    assert not [t for t, n in texts.items() if n > 1], f"duplicate questions {[t for t, n in texts.items() if n > 1]}"
    main_texts = {norm(q["question"]).lower() for q in main_questions}
    again = [r["id"] for r in rows if norm(r["question"]).lower() in main_texts]
    assert not again, f"questions already in questions.jsonl: {again}"


def test_counts_meet_the_minimums(unanswerable, plain):
    assert len(unanswerable) >= MIN_UNANSWERABLE, f"{len(unanswerable)} unanswerable (need {MIN_UNANSWERABLE})"
    assert len(plain) >= MIN_PLAIN, f"{len(plain)} plain (need {MIN_PLAIN})"


def test_missing_terms_are_asked_and_in_no_paper(unanswerable, corpus):
    """What the question asks for is written in it, and no title+abstract states it (whole words)."""
    problems = []
    for r in unanswerable:
        for m in r["missing"]:
            if m.lower() not in r["question"].lower():
                problems.append(f"{r['id']}: missing term {m!r} is not written in the question")
            found = [pid for pid, text in corpus.items() if term_regex(m).search(text)]
            if found:
                problems.append(f"{r['id']}: missing term {m!r} occurs in {found}")
    assert not problems, "\n".join(problems)


def test_recorded_grep_patterns_still_hit_no_paper(unanswerable, corpus):
    """Each note records `pattern`=hits for what was grepped; every count is 0 and still is."""
    problems = []
    for r in unanswerable:
        recorded = _RECORDED.findall(r["note"])
        if not recorded:
            problems.append(f"{r['id']}: note records no grepped patterns")
        for pattern, count in recorded:
            got = sum(1 for text in corpus.values() if re.search(pattern, text, re.I))
            if got != int(count) or got != 0:
                problems.append(f"{r['id']}: pattern `{pattern}` hits {got} papers (note says {count}; must be 0)")
    assert not problems, "\n".join(problems)


def test_neighbours_exist_and_are_spread(unanswerable, corpus, source):
    unknown = [(r["id"], r["neighbour"]) for r in unanswerable if r["neighbour"] not in corpus]
    assert not unknown, f"neighbours that are not parsed papers: {unknown}"
    neighbours = {r["neighbour"] for r in unanswerable}
    assert len(neighbours) >= MIN_NEIGHBOURS, f"{len(neighbours)} distinct neighbours (need {MIN_NEIGHBOURS})"
    pages = Counter(source[pid][:3] for pid in neighbours)
    for page in ("000", "003"):
        assert pages[page], f"no neighbour from the {page} page: {dict(pages)}"


def test_plain_spans_are_5_to_15_words(plain):
    problems = [span_length_problem(r["id"], g["span"]) for r in plain for g in r["gold"]]
    assert not any(problems), "\n".join(filter(None, problems))


def test_plain_spans_are_in_their_paper_and_only_there(plain, corpus):
    problems = []
    for r in plain:
        for g in r["gold"]:
            pid, span = g["paper_id"], norm(g["span"])
            if pid not in corpus:
                problems.append(f"{r['id']}: gold paper {pid} is not a parsed paper")
            elif span not in corpus[pid]:
                problems.append(f"{r['id']}: span {span!r} not in the title+abstract of {pid}")
            exact = [p for p, text in corpus.items() if span in text]
            loose = [p for p, text in corpus.items() if span.lower() in text.lower()]
            if exact != [pid] or loose != [pid]:
                problems.append(f"{r['id']}: span {span!r} is in {loose} (must be only {pid})")
    assert not problems, "\n".join(problems)


def test_heldout_is_about_one_third_of_each_type(unanswerable, plain):
    for kind, group in (("unanswerable", unanswerable), ("plain", plain)):
        held = [r for r in group if r["split"] == "heldout"]
        assert group and 0.25 <= len(held) / len(group) <= 0.40, \
            f"{kind}: heldout share {len(held)}/{len(group)} is not about one third"
    held_u = sum(r["split"] == "heldout" for r in unanswerable)
    assert held_u >= MIN_HELDOUT, f"{held_u} heldout unanswerable (need {MIN_HELDOUT})"


def test_no_neighbour_is_in_both_splits(unanswerable):
    split_of: dict[str, set[str]] = {}
    for r in unanswerable:
        split_of.setdefault(r["neighbour"], set()).add(r["split"])
    both = sorted(pid for pid, splits in split_of.items() if len(splits) > 1)
    leaks = [r["id"] for r in unanswerable if r["neighbour"] in both]
    assert not both, f"neighbours in both splits: {both} (rows {leaks})"


def test_heldout_rows_are_not_one_block(unanswerable):
    """The longest run of consecutive heldout unanswerable rows (file order) is short."""
    run = 0
    for r in unanswerable:
        run = run + 1 if r["split"] == "heldout" else 0
        assert run <= MAX_HELDOUT_RUN, \
            f"{r['id']}: {run} heldout rows in a row (at most {MAX_HELDOUT_RUN}), ending here"
