"""The eval runner: seed gate and report through the CLI, BEIR on a small fixture, metrics."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_rag, synthetic_papers, write_jsonl

from rag.evaluate import check_thresholds, load_beir_queries, ranking_metrics, run_beir
from rag.settings import Settings


def test_ranking_metrics_match_hand_computed_values():
    m = ranking_metrics(["x", "a", "y", "b"], {"a", "b"})
    assert m["hit@1"] == 0 and m["hit@5"] == 1
    assert m["mrr@10"] == pytest.approx(0.5)
    assert m["recall@10"] == 1.0
    import math
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert m["ndcg@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert ranking_metrics([], {"a"})["hit@10"] == 0


def test_gate_lists_every_failure():
    results = {"retrieval": {"hybrid": {"all": {"hit@5": 0.5, "mrr@10": 0.9}}},
               "answers": {"cites_gold": 0.9, "false_refusal_rate": 0.4}}
    thresholds = {"retrieval": {"hybrid": {"hit@5": 0.8, "mrr@10": 0.8}},
                  "answers": {"min": {"cites_gold": 0.8}, "max": {"false_refusal_rate": 0.2}}}
    assert check_thresholds(results, thresholds) == ["retrieval hybrid hit@5 = 0.500 < 0.8",
                                                     "answers false_refusal_rate = 0.400 > 0.2"]


@pytest.fixture
def beir_fixture(tmp_path):
    """A BEIR-format dataset small enough to embed in seconds; query i asks for document i."""
    directory = tmp_path / "tinybeir"
    (directory / "qrels").mkdir(parents=True)
    docs = synthetic_papers(12, seed=3)
    write_jsonl(directory / "corpus.jsonl",
                [{"_id": f"d{i}", "title": d["title"], "text": d["abstract"] + f" Code word kw{i}code."}
                 for i, d in enumerate(docs)])
    write_jsonl(directory / "queries.jsonl",
                [{"_id": f"q{i}", "text": f"{d['title']} kw{i}code", "metadata": {"leak": f"d{i}"}}
                 for i, d in enumerate(docs)] + [{"_id": "train-only", "text": "not in test", "metadata": {}}])
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(len(docs))]
    (directory / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return directory


def test_beir_runner_scores_every_mode(beir_fixture, tmp_path):
    queries, qrels = load_beir_queries(beir_fixture)
    assert "train-only" not in queries and qrels["q3"] == {"d3"}
    result = run_beir(beir_fixture, Settings(data_dir=tmp_path / "d"))
    assert result["documents"] == 12 and result["queries"] == 12
    assert result["collection"] == "beir-tinybeir"
    for mode in ("dense", "bm25", "hybrid"):
        metrics = result["modes"][mode]
        assert {"ndcg@10", "recall@100", "mrr@10", "queries_per_s"} <= metrics.keys()
        assert metrics["recall@100"] == 1.0  # 12 documents: every one is in the top 100
    assert result["modes"]["bm25"]["ndcg@10"] > 0.8, "the code word makes each query easy for BM25"
    again = run_beir(beir_fixture, Settings(data_dir=tmp_path / "d"))
    assert again["ingest"]["embedded_chunks"] == 0, "a second run reuses the collection"


def test_beir_dir_that_is_not_beir_is_one_line(tmp_path):
    result = run_rag("eval", "--beir", str(tmp_path), env={"RAG_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode != 0 and "not a BEIR dataset" in result.stderr and "Traceback" not in result.stderr


def test_beir_errors_name_the_missing_piece(tmp_path):
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="no such directory"):
        load_beir_queries(tmp_path / "typo")
    for name in ("corpus.jsonl", "queries.jsonl"):
        (tmp_path / name).write_text("")
    with pytest.raises(ConfigError, match="qrels/test.tsv is missing"):
        load_beir_queries(tmp_path)


@pytest.mark.slow
def test_cli_eval_gates_and_writes_a_report(seed_dir, tmp_path):
    data = tmp_path / "index"
    shutil.copytree(seed_dir, data)
    report = tmp_path / "report"
    env = {"RAG_DATA_DIR": str(data)}
    result = run_rag("eval", "--collection", "papers", "--json", "--report", str(report), env=env)
    results = json.loads(result.stdout)
    assert result.returncode == (1 if results["failures"] else 0)
    assert results["questions"] >= 60 and results["by_type"]["unanswerable"] >= 10
    assert set(results["retrieval"]) == {"dense", "bm25", "hybrid"}
    assert results["answers"]["citation_validity"] == 1.0
    page = (report / "README.md").read_text()
    assert page.startswith("# rag eval report")
    assert "38 lookup" in page and "{" not in page, "counts and calibration read as prose, not Python dicts"
    assert (report / "hit_rate_at_k.png").stat().st_size > 1000 and (report / "latency.png").is_file()
    strict = tmp_path / "strict.toml"
    strict.write_text('[retrieval.hybrid]\n"hit@1" = 1.01\n')
    failed = run_rag("eval", "--collection", "papers", "--no-answers", "--thresholds", str(strict), env=env)
    assert failed.returncode == 1 and "below threshold: retrieval hybrid hit@1" in failed.stderr
