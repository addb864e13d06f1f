"""Evaluation: the seed question set (retrieval + answers) and any BEIR-format dataset.

Runs the same Retriever and Asker the CLI and UI use. Ranking metrics are llama-index's
(HitRate, MRR, NDCG, Recall) over paper ids.
"""
from __future__ import annotations

import csv
import json
import statistics
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConfigError
from rag.settings import MODES, Settings

EVAL_MODES = tuple(sorted(MODES, key=lambda m: m == "hybrid"))  # the shipped fusion last, after its parts
EVALS_DIR = Path(__file__).resolve().parent.parent / "evals"


@dataclass
class EvalQuestion:
    id: str
    type: str
    question: str
    gold: list[dict] = field(default_factory=list)
    answer_contains: list[str] = field(default_factory=list)
    note: str = ""
    split: str = "tune"                     # "heldout": never looked at while choosing thresholds
    neighbour: str | None = None            # unanswerable: the real paper the question sits next to
    missing: list[str] = field(default_factory=list)  # unanswerable: what no abstract states

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def title_questions(papers: list[tuple[str, str, str]]) -> list[EvalQuestion]:
    """Every form of `rag.text.title_questions` for every titled paper; every third paper (by id)
    is held out."""
    from rag.text import title_questions as forms

    return [EvalQuestion(f"t-{pid}-{form}", "title", text, [{"paper_id": pid, "span": title}],
                         split="heldout" if int(pid[-6:], 16) % 3 == 0 else "tune", note=form)
            for pid, title, _ in papers for form, text in forms(title)]


def load_questions(path: Path) -> list[EvalQuestion]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read eval questions {path}: {e.strerror}") from None
    for i, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out.append(EvalQuestion(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise ConfigError(f"{path} line {i}: {e}") from None
    return out


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def resolve_gold(questions: list[EvalQuestion], papers: list[tuple[str, str, str]]) -> dict[str, set[str]]:
    """Gold paper ids per question. An id the index does not hold (a re-parse changed it) is
    found again by its text span, so the eval cannot silently lose a gold paper."""
    ids = {pid for pid, _, _ in papers}
    texts = [(pid, _norm(f"{title} {abstract}")) for pid, title, abstract in papers]
    gold: dict[str, set[str]] = {}
    for q in questions:
        found = set()
        for g in q.gold:
            if g["paper_id"] in ids:
                found.add(g["paper_id"])
                continue
            span = _norm(g["span"])
            matches = [pid for pid, text in texts if span in text]
            if len(matches) != 1:
                raise ConfigError(f"eval question {q.id}: gold {g['paper_id']} is not in the index and its "
                                  f"span matches {len(matches)} papers")
            found.add(matches[0])
        gold[q.id] = found
    return gold


def ranking_metrics(ranked: list[str], gold: set[str]) -> dict[str, float]:
    from llama_index.core.evaluation.retrieval.metrics import MRR, NDCG, HitRate, Recall

    if not ranked:
        return {"hit@1": 0.0, "hit@5": 0.0, "hit@10": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0, "recall@10": 0.0,
                "recall@100": 0.0}
    expected = sorted(gold)

    def score(metric, k: int) -> float:
        return metric.compute(expected_ids=expected, retrieved_ids=ranked[:k]).score

    return {"hit@1": score(HitRate(), 1), "hit@5": score(HitRate(), 5), "hit@10": score(HitRate(), 10),
            "mrr@10": score(MRR(), 10), "ndcg@10": score(NDCG(), 10), "recall@10": score(Recall(), 10),
            "recall@100": score(Recall(), 100)}


ANSWER_METRICS = ("cites_gold", "contains_fact", "citation_validity", "supported_citations",
                  "near_miss_handled", "refusal_accuracy", "false_refusal_rate", "false_refusal_rate_title",
                  "partial_rate", "errors", "overhead_ms_p50")
# The decision's own figures, also given per split (tune / heldout).
DECISION_METRICS = ("near_miss_handled", "refusal_accuracy", "false_refusal_rate", "false_refusal_rate_title",
                    "partial_rate")


def answer_table(answers: dict) -> list[tuple[str, str]]:
    """The answer metrics as (name, shown value) rows, as the terminal table and the report print them."""
    def show(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)
    return [(key, f"{answers[key]:.1f}" if key == "overhead_ms_p50" else show(answers[key]))
            for key in ANSWER_METRICS]


def decision_table(answers: dict) -> list[tuple[str, str, str]]:
    """(metric, tune, held out): the decision's figures on the questions thresholds were chosen on,
    and on those never looked at while choosing."""
    splits = answers["by_split"]

    def show(split: str, key: str) -> str:
        value = splits[split][key]
        return "–" if value is None else f"{value:.3f}"
    return [(key, show("tune", key), show("heldout", key)) for key in DECISION_METRICS]


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    # 6 places: the tables print 3, and rounding twice would turn 0.85246 into 0.853.
    return {k: round(statistics.fmean(r[k] for r in rows), 6) for k in rows[0]} if rows else {}


def evaluate_retrieval(settings: Settings, questions: list[EvalQuestion], gold: dict[str, set[str]],
                       modes=EVAL_MODES, k: int = 10) -> dict:
    from rag.retrieval import Retriever

    retriever = Retriever(settings)
    retriever.search(questions[0].question)  # warm: load the encoder and BM25 outside the timings
    result: dict = {}
    for mode in modes:
        per_type: dict[str, list] = defaultdict(list)
        latencies = []
        first_hit = []  # rank of the first gold paper, 0 when none in the top k
        for q in questions:
            if not q.answerable:
                continue
            began = time.perf_counter()
            hits = retriever.search(q.question, k=k, mode=mode)
            latencies.append((time.perf_counter() - began) * 1000)
            ranked = [h.paper_id for h in hits]
            per_type[q.type].append(ranking_metrics(ranked, gold[q.id]))
            first_hit.append(next((i for i, pid in enumerate(ranked, 1) if pid in gold[q.id]), 0))
        every = [m for rows in per_type.values() for m in rows]
        result[mode] = {"all": _mean(every), "by_type": {t: _mean(rows) for t, rows in sorted(per_type.items())},
                        "questions": len(every), "latency_ms": [round(x, 2) for x in latencies],
                        "hit_curve": [round(sum(0 < r <= c for r in first_hit) / len(first_hit), 4)
                                      for c in range(1, k + 1)]}
    retriever.close()
    return result


def evaluate_answers(settings: Settings, questions: list[EvalQuestion], gold: dict[str, set[str]]) -> dict:
    from rag.answer import Asker

    asker = Asker(settings)
    rows = []
    for q in questions:
        answer = asker.ask(q.question)
        cited = {answer.sources[n - 1].paper_id for v in answer.citations for n in v["cited"]}
        best = max((s.relevance for s in answer.sources if s.relevance is not None), default=-1.0)
        # A near miss is handled when refused, or answered in part naming what the question asks
        # that no paper states.
        named = any(m.lower() in x.lower() or x.lower() in m.lower() for m in q.missing for x in answer.missing)
        rows.append({
            "id": q.id, "type": q.type, "split": q.split, "answerable": q.answerable, "refused": answer.refused,
            "decision": answer.decision, "missing": answer.missing, "evidence": answer.evidence,
            "handled": answer.refused or (answer.decision == "partial" and named),
            "relevance": round(best, 4), "error": answer.error,
            "cites_gold": bool(cited & gold[q.id]),
            "contains_fact": all(f.lower() in answer.answer.lower() for f in q.answer_contains),
            "valid_citations": not answer.removed_citations,
            "verdicts": [v["supported"] for v in answer.citations],
            "overhead_ms": answer.timings_ms.get("overhead", 0.0),
        })
    answerable = [r for r in rows if r["answerable"] and r["type"] != "title"]
    with_fact = [r for r in answerable if r["type"] in ("number", "lookup")]
    verdicts = [v for r in rows if not r["refused"] for v in r["verdicts"]]

    def share(rs, key, value=True):
        return round(sum(r[key] == value for r in rs) / len(rs), 6) if rs else None

    def decisions(rs: list[dict]) -> dict:
        titles = [r for r in rs if r["type"] == "title"]
        other = [r for r in rs if r["answerable"] and r["type"] != "title"]
        near = [r for r in rs if not r["answerable"]]
        return {"near_miss_handled": share(near, "handled"), "refusal_accuracy": share(near, "refused"),
                "false_refusal_rate": share(other, "refused"), "false_refusal_rate_title": share(titles, "refused"),
                "partial_rate": share(titles + other, "decision", "partial"),
                "questions": {"title": len(titles), "answerable": len(other), "near_miss": len(near)}}

    overall = decisions(rows)
    return {
        "backend": asker.backend_name,
        "questions": len(rows),
        "cites_gold": share([r for r in answerable if not r["refused"]], "cites_gold"),
        "contains_fact": share(with_fact, "contains_fact"),
        "citation_validity": share(rows, "valid_citations"),
        "supported_citations": round(sum(verdicts) / len(verdicts), 6) if verdicts else None,
        **{k: overall[k] for k in DECISION_METRICS},
        "by_split": {split: decisions([r for r in rows if r["split"] == split]) for split in ("tune", "heldout")},
        "errors": sum(1 for r in rows if r["error"]),
        "refusal_calibration": calibrate_refusal(rows),
        "overhead_ms_p50": round(statistics.median(r["overhead_ms"] for r in rows), 2),
        "rows": rows,
    }


def calibrate_refusal(rows: list[dict]) -> dict:
    """The threshold on best-chunk similarity that best separates unanswerable questions from
    answerable ones (balanced accuracy), to compare with the shipped RAG_REFUSE_BELOW."""
    pos = [r["relevance"] for r in rows if not r["answerable"]]
    neg = [r["relevance"] for r in rows if r["answerable"]]
    if not pos or not neg:
        return {}
    best = (0.0, 0.0)
    for t in sorted(set(pos + neg)) + [1.0]:
        refuse_ok = sum(x < t for x in pos) / len(pos)
        answer_ok = sum(x >= t for x in neg) / len(neg)
        best = max(best, ((refuse_ok + answer_ok) / 2, t))
    return {"best_threshold": round(best[1], 4), "balanced_accuracy": round(best[0], 4)}


def load_thresholds(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read eval thresholds {path}: {e}") from None


def check_thresholds(results: dict, thresholds: dict) -> list[str]:
    """Every failure as one line; an empty list means the gate passes."""
    failures = []
    for mode, minimums in thresholds.get("retrieval", {}).items():
        got = results["retrieval"][mode]["all"]
        failures += [f"retrieval {mode} {m} = {got[m]:.3f} < {v}" for m, v in minimums.items() if got[m] < v]
    answers = results.get("answers") or {}
    for metric, v in thresholds.get("answers", {}).get("min", {}).items():
        if answers.get(metric) is not None and answers[metric] < v:
            failures.append(f"answers {metric} = {answers[metric]:.3f} < {v}")
    for metric, v in thresholds.get("answers", {}).get("max", {}).items():
        if answers.get(metric) is not None and answers[metric] > v:
            failures.append(f"answers {metric} = {answers[metric]:.3f} > {v}")
    return failures


def run_seed_eval(settings: Settings, questions_path: Path, answers: bool = True,
                  progress: Callable | None = None, near_miss: Path | None = EVALS_DIR / "near_miss.jsonl") -> dict:
    """Ingest seeds/ into the settings' collection (idempotent; the CLI uses its own 'eval-seeds'),
    then score retrieval in every mode and, unless told not to, answers with the configured backend."""
    from rag.ingestion import ingest
    from rag.store import Index

    ingest([EVALS_DIR.parent / "seeds"], settings, progress=progress)
    questions = load_questions(questions_path)
    index = Index(settings)
    papers = list(index.catalog.all_papers())
    index.close()
    # The answer-or-refuse decision is also scored on questions as people type them: the hand-checked
    # near misses and plain questions, and questions generated from every title.
    asked = questions + load_questions(near_miss) + title_questions(papers) if near_miss else questions
    gold = resolve_gold(asked, papers)
    results = {"questions": len(questions), "by_type": dict(sorted(Counter(q.type for q in questions).items())),
               "settings": {k: getattr(settings, k) for k in ("mode", "top_k", "rrf_k", "dense_weight",
                                                              "bm25_weight", "refuse_below", "coverage_min",
                                                              "name_rarity", "llm")},
               "retrieval": evaluate_retrieval(settings, questions, gold)}
    if answers:
        results["answers"] = evaluate_answers(settings, asked, gold)
        results["answers"]["by_type"] = dict(sorted(Counter(q.type for q in asked).items()))
    return results


# --- BEIR ---------------------------------------------------------------------------------------
def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    """Ingest's line reader (BOM, bad UTF-8, a cut last line), but strict: for queries a bad line
    is an error, not a skipped record."""
    from rag.sources.parsed import Rejected
    from rag.sources.records import _json_rows

    for item in _json_rows(path):
        if isinstance(item, Rejected):
            raise ConfigError(f"{path}:{item.location.removeprefix('line ')}: not a JSON object ({item.reason})")
        where, record = item
        n = int(where.removeprefix("line "))
        if not isinstance(record, dict) or "_id" not in record:
            raise ConfigError(f"{path}:{n}: a BEIR record needs an \"_id\"")
        yield n, record


def load_beir_queries(directory: Path, split: str = "test") -> tuple[dict[str, str], dict[str, set[str]]]:
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not directory.is_dir():
        raise ConfigError(f"no such directory: {directory}")
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise ConfigError(f"{directory} is not a BEIR dataset: {needed.relative_to(directory)} is missing")
    qrels: dict[str, set[str]] = defaultdict(set)
    with qrels_path.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        if [c.strip() for c in next(rows, [])][:3] != ["query-id", "corpus-id", "score"]:
            raise ConfigError(f"{qrels_path}: the first line must be the BEIR header "
                              "query-id<TAB>corpus-id<TAB>score")
        for n, row in enumerate(rows, 2):
            if not "".join(row).strip():
                continue
            try:
                query_id, doc_id, score = row[0].strip(), row[1].strip(), float(row[2])
            except (IndexError, ValueError):
                raise ConfigError(f"{qrels_path}:{n}: expected query-id<TAB>corpus-id<TAB>score, "
                                  f"got {chr(9).join(row)[:80]!r}") from None
            if score > 0:
                qrels[query_id].add(doc_id)
    if not qrels:
        raise ConfigError(f"{qrels_path} names no relevant documents")
    queries = {}
    path = directory / "queries.jsonl"
    for n, record in _jsonl_records(path):
        query_id = str(record["_id"])
        if query_id in qrels:
            if not isinstance(record.get("text"), str) or not record["text"].strip():
                raise ConfigError(f"{path}:{n}: query {query_id!r} has no text")
            queries[query_id] = record["text"]  # never `metadata`: it holds the answers
    if not queries:
        raise ConfigError(f"none of the {len(qrels)} queries in {qrels_path.name} is in {path.name}")
    return queries, {q: qrels[q] for q in queries}


def beir_warnings(beir: dict) -> list[str]:
    """What a reader of the BEIR scores should know: gold documents that were never indexed."""
    notes = []
    if beir.get("rejected_documents"):
        notes.append(f"{beir['rejected_documents']} corpus records were rejected (see `rag ingest` on corpus.jsonl)")
    if beir.get("qrels_unknown_documents"):
        notes.append(f"{beir['qrels_unknown_documents']} documents named in the qrels are not in the index; "
                     "they count as misses")
    return notes


def run_beir(directory: Path, settings: Settings, modes=EVAL_MODES, progress: Callable | None = None,
             split: str = "test") -> dict:
    from rag.ingestion import ingest
    from rag.retrieval import Retriever

    queries, qrels = load_beir_queries(directory, split)
    # Its own collection, named after the folder within Chroma's rules (ASCII, ends alphanumeric).
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in directory.resolve().name.lower())
    name = f"beir-{slug.strip('-') or 'data'}"[:200].rstrip("-")
    settings = settings.model_copy(update={"collection": name, "candidates": max(settings.candidates, 100)})
    report = ingest([directory / "corpus.jsonl"], settings, progress=progress)
    if report.papers_total > report.added + report.updated + report.unchanged:
        # The collection holds documents this corpus lacks (another dataset in a folder of the same
        # name, or documents since removed): they would be ranked and skew every score.
        report = ingest([directory / "corpus.jsonl"], settings, progress=progress, rebuild=True)
    out: dict = {"dataset": str(directory), "collection": name, "split": split, "queries": len(queries),
                 "documents": report.papers_total, "chunks": report.chunks_total,
                 "ingest": {"seconds": round(report.seconds, 1), "embedded_chunks": report.chunks_embedded,
                            "chunks_per_s": round(report.chunks_embedded / report.seconds, 1)
                            if report.chunks_embedded else None},
                 "modes": {}}
    retriever = Retriever(settings)
    unknown = {d for docs in qrels.values() for d in docs} - set(retriever.index.catalog.hashes())
    out["qrels_unknown_documents"] = len(unknown)  # counted as misses, as BEIR's own scorer does
    out["rejected_documents"] = len(report.rejected)
    # Untimed, so that whichever mode runs first is not charged for them: loading Chroma's and
    # BM25's indexes, and the first encoding of each query length (ONNX sizes its buffers).
    retriever.search(next(iter(queries.values())))
    for text in queries.values():
        retriever.embed_query(text)
    for mode in modes:
        began = time.perf_counter()
        rows = [ranking_metrics([h.paper_id for h in retriever.search(text, k=100, mode=mode)], qrels[qid])
                for qid, text in queries.items()]
        seconds = time.perf_counter() - began
        metrics = _mean(rows)
        out["modes"][mode] = {"ndcg@10": metrics["ndcg@10"], "recall@100": metrics["recall@100"],
                              "mrr@10": metrics["mrr@10"], "queries_per_s": round(len(rows) / seconds, 1)}
    retriever.close()
    return out
