"""Search over the ingested seeds: ranked papers, each once, in every mode; the CLI contract."""
from __future__ import annotations

import json

import pytest
from conftest import SEEDS, HashEmbedder, run_rag

from rag.retrieval import Retriever, rrf


def test_rrf_rewards_agreement_and_respects_weights():
    fused = rrf([(["a", "b", "c"], 1.0), (["b", "c", "a"], 1.0)], k=60)
    assert max(fused, key=fused.get) == "b"
    heavy = rrf([(["a", "b"], 3.0), (["b", "a"], 1.0)], k=60)
    assert heavy["a"] > heavy["b"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_paraphrased_query_finds_its_paper_in_every_mode(seed_settings, mode):
    retriever = Retriever(seed_settings)
    hits = retriever.search("pruning lets deep RL agents use their parameters better", k=5, mode=mode)
    titles = [h.title for h in hits]
    assert "In deep reinforcement learning, a pruned network is a good network" in titles[:3]


def test_papers_are_collapsed_and_carry_full_abstracts(seed_settings):
    hits = Retriever(seed_settings).search("low-rank adaptation fine-tuning initialization", k=10)
    ids = [h.paper_id for h in hits]
    assert len(ids) == len(set(ids)) == 10
    assert [h.rank for h in hits] == list(range(1, 11))
    assert all(len(h.abstract) > 200 for h in hits)
    assert any("LoRA" in h.title for h in hits[:3])
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_cli_search_json_contract(fake_seed_dir):
    result = run_rag("search", "LoRA gradient initialization", "-k", "3", "--json",
                     env={"RAG_DATA_DIR": str(fake_seed_dir)})
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["hits"]) == 3
    for hit in payload["hits"]:
        assert {"rank", "paper_id", "title", "abstract", "score"} <= hit.keys()


def test_cli_search_reads_queries_from_stdin(fake_seed_dir):
    queries = "graph diffusion generative models\n\ntipping points farming\n" + "x" * 100_000 + "\n"
    result = run_rag("search", "-", "--json", "-k", "2", input=queries, env={"RAG_DATA_DIR": str(fake_seed_dir)})
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query"][:30] for line in lines[:2]] == ["graph diffusion generative mod", "tipping points farming"]
    assert "Graph Representation Learning with Diffusion" in lines[0]["hits"][0]["title"]
    assert "tipping points" in lines[1]["hits"][0]["title"]
    assert "limit" in lines[2]["error"], "an oversized line is reported, not fatal for the others"
    assert result.returncode == 1


@pytest.mark.parametrize("query, message", [("   ", "empty"), ("q" * 100_000, "100,000 characters")])
def test_bad_queries_get_one_clear_line(fake_seed_dir, query, message):
    result = run_rag("search", query, env={"RAG_DATA_DIR": str(fake_seed_dir)})
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_search_before_ingest_says_what_to_do(tmp_path):
    result = run_rag("search", "anything", env={"RAG_DATA_DIR": str(tmp_path / "empty")})
    assert result.returncode != 0 and "rag ingest" in result.stderr and "Traceback" not in result.stderr


def test_status_reports_counts(fake_seed_dir):
    result = run_rag("status", "--json", env={"RAG_DATA_DIR": str(fake_seed_dir)})
    info = json.loads(result.stdout)
    assert info["papers"] > 150 and info["chunks"] > info["papers"]
    assert info["embed_model"] == HashEmbedder.name
    assert len(info["files"]) == 5


def test_hostile_titles_and_abstracts_print_as_inert_text(tmp_path):
    """Rich markup and terminal control sequences from a paper are shown, not obeyed."""
    from conftest import write_jsonl

    title = "[bold red]Evil[/] sparse attention \x1b]0;pwned\x07 paper [/]"
    abstract = "Sparse attention saves memory on long documents [/bold] \x1b[2J by 60%. It is [link=x]fast[/link]."
    source = write_jsonl(tmp_path / "evil.jsonl", [{"id": "evil", "title": title, "abstract": abstract}])
    env = {"RAG_DATA_DIR": str(tmp_path / "d")}
    assert run_rag("ingest", str(source), env=env).returncode == 0
    for command in (["search", "sparse attention memory"], ["ask", "How much memory does sparse attention save?"]):
        result = run_rag(*command, env=env)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "[bold red]Evil[/] sparse attention" in result.stdout, result.stdout


def test_the_keyword_index_built_in_batches_scores_exactly_as_bm25s_does(tmp_path, monkeypatch):
    """rag writes bm25s's files itself, a batch at a time (memory bounded at arXiv scale): every paper's
    score for every query must be bm25s's own, empty and CJK papers included."""
    import bm25s
    import numpy as np

    from rag import store
    from rag.sources import load
    from rag.store import BM25Index, _split_cjk

    rows = [(p.paper_id, p.title, p.abstract) for p in load([SEEDS]).papers]
    rows += [("stopwords", "", "the of and"), ("cjk", "蛋白质折叠", "深度学习 protein folding")]
    monkeypatch.setattr(store, "BM25_BATCH", 17)   # many batches, the last one short
    ours = BM25Index(tmp_path / "bm25")
    ours.build(iter(rows))
    reference = bm25s.BM25(k1=BM25Index.K1, b=BM25Index.B)
    reference.index(bm25s.tokenize([_split_cjk(f"{t}\n{a}") for _, t, a in rows], stopwords="en",
                                   stemmer=ours._stemmer(), show_progress=False), show_progress=False)
    queries = [" ".join(a.split()[5:15]) for _, _, a in rows[:60]] + ["蛋白质", "protein folding", "the"]
    compared = 0
    for q in queries:
        terms = ours.tokenize([q])[0]
        if not reference.get_tokens_ids(terms):
            continue
        ours._load()
        got = ours._retriever.get_scores_from_ids(ours._retriever.get_tokens_ids(terms))
        assert np.array_equal(got, reference.get_scores_from_ids(reference.get_tokens_ids(terms))), q
        compared += 1
    assert compared >= 60
    assert [pid for pid, _ in ours.search("protein folding", 2)][0] == "cjk"
