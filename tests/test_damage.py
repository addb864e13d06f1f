"""Damaged state files give one clear line that names the file and the way out, never a traceback
or a quietly wrong answer; `rag doctor` repairs what needs no embedding. (Fake embedder: the damage
and the repair are the same with any model.)"""
from __future__ import annotations

import shutil
import sqlite3

import pytest
from conftest import HashEmbedder, run_rag, synthetic_papers, write_jsonl


@pytest.fixture
def index(tmp_path):
    from rag.ingestion import ingest
    from rag.settings import Settings

    source = write_jsonl(tmp_path / "papers.jsonl", synthetic_papers(5) + [
        {"id": "needle", "title": "Protein folding with diffusion models",
         "abstract": "We predict protein structures by denoising diffusion over residue frames."}])
    ingest([source], Settings(data_dir=tmp_path / "d"))
    return tmp_path / "d"


def one_clear_line(result, *words):
    assert result.returncode != 0 and "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_garbage_in_the_manifest_is_one_line_everywhere(index):
    with sqlite3.connect(index / "papers" / "catalog.sqlite") as db:  # the damage: a torn write
        db.execute("update meta set value = '{\"embed_model\": ' where key = 'manifest'")
    env = {"RAG_DATA_DIR": str(index)}
    for command in (["status"], ["search", "protein folding"], ["ingest", str(index.parent / "papers.jsonl")]):
        one_clear_line(run_rag(*command, env=env), "manifest", "catalog.sqlite", "--rebuild")


@pytest.mark.parametrize("lost", ["data.csc.index.npy", "ids.json", "whole folder"])
def test_a_damaged_keyword_index_is_never_silent_and_doctor_rebuilds_it(index, lost):
    from rag.errors import IndexDamaged
    from rag.ingestion import doctor
    from rag.retrieval import Retriever
    from rag.settings import Settings

    bm25 = index / "papers" / "bm25"
    shutil.rmtree(bm25) if lost == "whole folder" else (bm25 / lost).unlink()
    one_clear_line(run_rag("search", "protein folding", env={"RAG_DATA_DIR": str(index)}),
                   "keyword index", "rag doctor")
    settings = Settings(data_dir=index)
    for mode in ("bm25", "hybrid"):  # not 0 hits, not quietly dense-only
        with pytest.raises(IndexDamaged, match="keyword index"):
            Retriever(settings).search("protein folding", mode=mode)
    assert any("rebuilt the keyword index" in line for line in doctor(settings).repaired)
    assert Retriever(settings).search("protein folding", k=1, mode="bm25")[0].paper_id == "needle"


def test_doctor_makes_catalog_and_vectors_agree(index):
    from rag.chunking import Chunk
    from rag.ingestion import doctor
    from rag.settings import Settings
    from rag.sources import Paper
    from rag.store import Index

    settings = Settings(data_dir=index)
    store = Index(settings)
    store.vectors.upsert([Chunk("orphan:0", "orphan", 0, "orphan text")], HashEmbedder().encode(["orphan text"]),
                         {"orphan": Paper("orphan", "", "orphan text", "x")})
    store.vectors.delete_papers(["needle"])  # a paper whose vectors were lost
    store.close()

    report = doctor(settings)
    assert report.problems == [] and (report.papers, report.chunks) == (5, Index(settings).vectors.count())
    assert len(report.repaired) == 3, report.repaired  # orphan deleted, needle forgotten, BM25 rebuilt
    from rag.ingestion import ingest

    assert ingest([index.parent / "papers.jsonl"], settings).added == 1, "the forgotten paper is embedded again"
    assert doctor(settings).repaired == [], "nothing left to repair"
    assert run_rag("doctor", env={"RAG_DATA_DIR": str(index)}).stdout.startswith("index whole: 6 papers")


def test_a_damaged_vector_store_is_one_line_and_a_rebuild_starts_a_new_one(index):
    """chroma.sqlite3 cut in half, as a torn copy or a failing disk leaves it."""
    store = index / "chroma" / "chroma.sqlite3"
    with open(store, "r+b") as f:
        f.truncate(store.stat().st_size // 2)
    env = {"RAG_DATA_DIR": str(index)}
    one_clear_line(run_rag("search", "protein folding", env=env), "vector store", "damaged", "--rebuild")
    one_clear_line(run_rag("ingest", str(index.parent / "papers.jsonl"), env=env), "vector store", "--rebuild")

    rebuilt = run_rag("ingest", "--rebuild", str(index.parent / "papers.jsonl"), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "moved it to" in rebuilt.stderr and list(index.glob("chroma.damaged-*"))
    found = run_rag("search", "protein folding", "-k", "1", "--json", env=env)
    assert found.returncode == 0 and '"paper_id": "needle"' in found.stdout


@pytest.mark.parametrize("damage", ["papers.live", "catalog.sqlite"])
def test_a_damaged_catalog_or_live_pointer_is_one_line_and_a_rebuild_mends_it(index, damage):
    env = {"RAG_DATA_DIR": str(index)}
    if damage == "papers.live":
        (index / "papers.live").write_text("../../etc\n")
    else:
        (index / "papers" / "catalog.sqlite").write_bytes(b"not a database at all" * 100)
    one_clear_line(run_rag("search", "protein folding", env=env), damage, "--rebuild")
    from rag.ingestion import ingest
    from rag.retrieval import Retriever
    from rag.settings import Settings

    settings = Settings(data_dir=index)
    ingest([index.parent / "papers.jsonl"], settings, rebuild=True)
    assert Retriever(settings).search("protein folding", k=1)[0].paper_id == "needle"
