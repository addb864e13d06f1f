"""The eval runner: seed gate and report through the CLI, BEIR on a small fixture, metrics."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT, run_rag, synthetic_papers, write_jsonl

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
    assert again["qrels_unknown_documents"] == 0 and again["rejected_documents"] == 0

    # Another dataset in a folder of the same name must not be scored against a mix of both corpora.
    other = tmp_path / "elsewhere" / beir_fixture.name
    shutil.copytree(beir_fixture, other)
    corpus = (other / "corpus.jsonl").read_text().splitlines()
    (other / "corpus.jsonl").write_text("\n".join(corpus[:6]) + "\n")
    mixed = run_beir(other, Settings(data_dir=tmp_path / "d"))
    assert mixed["collection"] == "beir-tinybeir" and mixed["documents"] == 6
    assert mixed["qrels_unknown_documents"] == 6  # the gold of q6..q11 is not in this corpus


def test_beir_dir_that_is_not_beir_is_one_line(tmp_path):
    result = run_rag("eval", "--beir", str(tmp_path), env={"RAG_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode != 0 and "not a BEIR dataset" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("queries, qrels, expected", [
    ('{"_id": "q1", "text": "a"}\n{oops\n', "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
     r"queries.jsonl:2: not a JSON object"),
    ('{"text": "a"}\n', "query-id\tcorpus-id\tscore\nq1\td1\t1\n", r"queries.jsonl:1: .*needs an \"_id\""),
    ('{"_id": "q1", "text": "a"}\n', "q1\td1\t1\n", r"first line must be the BEIR header"),
    ('{"_id": "q1", "text": "a"}\n', "query-id\tcorpus-id\tscore\nq1 d1 1\n", r"test.tsv:2: expected query-id"),
    ('{"_id": "q1", "text": "a"}\n', "query-id\tcorpus-id\tscore\n", r"names no relevant documents"),
    ("", "query-id\tcorpus-id\tscore\nq1\td1\t1\n", r"none of the 1 queries in test.tsv is in queries.jsonl"),
    ('{"_id": "q1"}\n', "query-id\tcorpus-id\tscore\nq1\td1\t1\n", r"query 'q1' has no text"),
])
def test_malformed_beir_files_are_named_with_their_line(tmp_path, queries, qrels, expected):
    from rag.errors import ConfigError

    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "t", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text(queries)
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    with pytest.raises(ConfigError, match=expected):
        load_beir_queries(tmp_path)


def test_beir_queries_with_bad_utf8_name_the_line(tmp_path):
    from rag.errors import ConfigError

    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "t", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_bytes(b'\xef\xbb\xbf{"_id": "q1", "text": "a"}\n\xff bad\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(ConfigError, match=r"queries.jsonl:2: .*not UTF-8"):
        load_beir_queries(tmp_path)


def test_beir_accepts_numeric_ids_and_float_scores(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": 7, "title": "t", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": 1, "text": "a"}\n{"_id": 2, "text": "b"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t7\t1.0\n2\t7\t0\n")
    assert load_beir_queries(tmp_path) == ({"1": "a"}, {"1": {"7"}})


def test_beir_errors_name_the_missing_piece(tmp_path):
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="no such directory"):
        load_beir_queries(tmp_path / "typo")
    for name in ("corpus.jsonl", "queries.jsonl"):
        (tmp_path / name).write_text("")
    with pytest.raises(ConfigError, match="qrels/test.tsv is missing"):
        load_beir_queries(tmp_path)


@pytest.mark.slow
def test_cli_eval_gates_and_writes_a_report(fake_seed_dir, tmp_path):
    data = tmp_path / "index"
    shutil.copytree(fake_seed_dir, data)
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
    few = tmp_path / "few.jsonl"   # no score reaches 1.01: a dozen questions show the gate as well as all
    few.write_text("".join((ROOT / "evals" / "questions.jsonl").read_text().splitlines(keepends=True)[:12]))
    failed = run_rag("eval", "--collection", "papers", "--no-answers", "--thresholds", str(strict),
                     "--questions", str(few), env=env)
    assert failed.returncode == 1 and "below threshold: retrieval hybrid hit@1" in failed.stderr
