"""Ingest with real Chroma and bm25s: chunking, idempotency, model check, crash recovery, rebuilds
and locking. Embedding is the conftest fake (the bookkeeping is the same with any embedder); the
seed index and evals cover the real model."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, HashEmbedder, run_rag, synthetic_papers, write_jsonl

from rag.errors import ModelMismatch
from rag.ingestion import ingest
from rag.settings import Settings
from rag.sources import Paper, load
from rag.store import Index


def test_every_seed_paper_is_indexed_once(fake_seed_settings):
    settings = fake_seed_settings
    expected = {p.paper_id for p in load([SEEDS]).papers}
    index = Index(settings)
    stored = {row[0] for row in index.catalog.all_papers()}
    assert stored == expected
    vectors = index.vectors.collection(create=False).get(include=["metadatas"])
    assert {m["paper_id"] for m in vectors["metadatas"]} == expected
    assert index.catalog.counts()["chunks"] == len(vectors["ids"])


def test_chunks_carry_the_title_and_fit_the_embedder(fake_seed_settings):
    from rag.embedding import load_embedder

    settings = fake_seed_settings
    index = Index(settings)
    titles = {pid: title for pid, title, _ in index.catalog.all_papers()}
    got = index.vectors.collection(create=False).get(include=["metadatas", "documents"])
    # Only chunks whose title was cut keep their text in Chroma; the rest are rebuilt from the catalog.
    assert sum(d is not None for d in got["documents"]) < len(got["ids"]) / 10
    texts = index.vectors.texts(got["ids"], index.catalog.papers(list(titles)))
    embedder = load_embedder(settings)
    tokenizer, model_limit = embedder.tokenizer(), embedder.max_tokens
    multi = 0
    for meta, text in zip(got["metadatas"], [texts[i] for i in got["ids"]]):
        title = titles[meta["paper_id"]]
        if title:
            assert text.startswith(title + "\n")
        assert len(tokenizer.encode(text).ids) <= model_limit  # special tokens included
        multi += meta["n"] > 0
    assert multi > 50, "seed abstracts are longer than the embedder reads: many need a second chunk"


@pytest.mark.parametrize("max_tokens", [32, 64])
def test_small_chunks_with_a_long_title_split_quietly(max_tokens, capsys):
    """RAG_CHUNK_TOKENS may be as small as 32: a long title is cut to a third of the chunk rather
    than leaving no room (llama-index raised 'Metadata length is longer than chunk size')."""
    from rag.chunking import Chunker
    from rag.embedding import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("all-MiniLM-L6-v2"))
    title = "A Very Long Title About Low-Rank Adaptation of Large Language Models " * 3
    abstract = " ".join(f"Sentence {i} reports that the method improves accuracy by {i} points." for i in range(12))
    chunks = Chunker(tokenizer, max_tokens, 8).chunks(Paper("p", title, abstract, "x"))
    assert len(chunks) > 3 and all(len(tokenizer.encode(c.text).ids) <= max_tokens for c in chunks)
    assert all(c.text.startswith("a very long title") for c in chunks)  # the cut title, in every chunk
    assert "11 points" in " ".join(c.text for c in chunks)  # nothing of the abstract is lost
    assert capsys.readouterr().out == ""


def test_chunks_end_at_sentences_not_at_abbreviations_and_chunking_never_imports_nltk():
    """Passages break between sentences, not after "et al." or "Fig.", and every passage is a piece of the
    abstract (its span rebuilds it). NLTK (with scipy.stats) would cost ~2 s of every `rag ingest`."""
    code = """if True:
        import sys
        from rag.chunking import Chunker
        from rag.embedding import load_tokenizer, resolve_model
        from rag.sources import Paper
        abstract = " ".join(f"As Smith et al. reported in Fig. {i}, the dose (e.g. 5 mg vs. 10 mg) was safe in "
                            f"trial {i}. Vitamin D. levels rose by {i} percent." for i in range(30))
        paper = Paper("p", "A title", abstract, "x")
        chunks = Chunker(load_tokenizer(resolve_model("all-MiniLM-L6-v2")), 64, 8).chunks(paper)
        assert len(chunks) > 5
        for c in chunks:
            passage = c.text.removeprefix("A title\\n")
            assert c.span and abstract[c.span[0]:c.span[1]] == passage, c
            assert passage.startswith(("As Smith", "Vitamin D")), passage
            assert passage.rstrip().endswith("."), passage
        assert "nltk" not in sys.modules and "scipy" not in sys.modules
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_reingest_embeds_nothing_and_is_fast(tmp_path):
    source = write_jsonl(tmp_path / "papers.jsonl", synthetic_papers(12))
    settings = Settings(data_dir=tmp_path / "d")
    first = ingest([source], settings)
    assert (first.added, first.unchanged) == (12, 0) and first.chunks_embedded >= 12
    second = ingest([source], settings)
    assert (second.added, second.updated, second.unchanged, second.chunks_embedded) == (0, 0, 12, 0)
    assert second.chunks_total == first.chunks_total


def test_vectors_embedded_a_part_ahead_land_on_their_chunks_and_progress_comes_from_the_ingesting_thread(
        tmp_path, monkeypatch):
    import threading

    import numpy as np

    from rag import ingestion as ingest_module

    monkeypatch.setattr(ingest_module, "PAPERS_PER_COMMIT", 2)   # four parts, each embedded while one is written
    source = write_jsonl(tmp_path / "papers.jsonl", synthetic_papers(7))
    settings = Settings(data_dir=tmp_path / "d")
    seen = []
    report = ingest([source], settings, progress=lambda done, total: seen.append((done, total, threading.get_ident())))
    assert seen[-1][:2] == (report.chunks_embedded, report.chunks_embedded)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert {t for _, _, t in seen} == {threading.get_ident()}   # the UI's callback belongs to its request
    index = Index(settings)
    got = index.vectors.collection(create=False).get(include=["embeddings"])
    texts = index.vectors.texts(got["ids"], index.catalog.papers([f"syn-{i}" for i in range(7)]))
    fake = HashEmbedder()
    assert len(got["ids"]) == len(texts) == report.chunks_embedded
    assert all(np.allclose(v, fake.vector(texts[i])) for i, v in zip(got["ids"], got["embeddings"]))


def test_changed_paper_is_updated_not_duplicated(tmp_path):
    records = synthetic_papers(3)
    source = write_jsonl(tmp_path / "papers.jsonl", records)
    settings = Settings(data_dir=tmp_path / "d")
    ingest([source], settings)
    records[0]["abstract"] = "A much shorter abstract now, of only one chunk in the index."
    write_jsonl(source, records)
    report = ingest([source], settings)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    index = Index(settings)
    chunks = index.vectors.collection(create=False).get(where={"paper_id": "syn-0"})
    assert len(chunks["ids"]) == 1
    assert index.catalog.counts()["chunks"] == index.vectors.count()


def test_other_model_is_refused_at_query_and_ingest(tmp_path):
    from rag.embedding import resolve_model
    from rag.retrieval import Retriever
    from rag.settings import DEFAULT_MODEL

    source = write_jsonl(tmp_path / "papers.jsonl", synthetic_papers(2))
    settings = Settings(data_dir=tmp_path / "d")
    ingest([source], settings)
    # A different local model: same architecture, different config → different fingerprint.
    other = tmp_path / "other-model"
    shutil.copytree(resolve_model(DEFAULT_MODEL).path, other)
    config = json.loads((other / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (other / "config.json").write_text(json.dumps(config))
    assert resolve_model(str(other)).fingerprint != resolve_model(DEFAULT_MODEL).fingerprint
    built_with = f"built with {HashEmbedder.name}"
    with pytest.raises(ModelMismatch, match=re.escape(built_with)):
        Retriever(settings.model_copy(update={"embedder": None, "embed_model": str(other)}))
    with pytest.raises(ModelMismatch):
        ingest([source], settings.model_copy(update={"embedder": None, "embed_model": str(other)}))
    result = run_rag("search", "model", "--embed-model", str(other),
                     env={"RAG_DATA_DIR": str(tmp_path / "d"), "RAG_EMBEDDER": ""})
    assert result.returncode != 0
    assert built_with in result.stderr and "Traceback" not in result.stderr


def _papers(data_dir) -> int:
    from rag.store import status

    return status(Settings(data_dir=data_dir))["papers"]


def test_searches_go_on_during_an_ingest_and_one_killed_halfway_is_completed_by_a_rerun(tmp_path):
    from rag import ingestion as ingest_module

    n = ingest_module.PAPERS_PER_COMMIT + 10
    source = write_jsonl(tmp_path / "papers.jsonl", synthetic_papers(n))
    data = tmp_path / "d"
    # The embedder stalls on its second batch, after the first commit: the kill lands there.
    env = {**os.environ, "RAG_DATA_DIR": str(data), "RAG_EMBEDDER": "conftest:StallingEmbedder"}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(source)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stalled = Path(f"{data}.stalled")
    while not stalled.exists():
        assert proc.poll() is None, f"ingest ended before stalling: {proc.stderr.read()}"
        time.sleep(0.05)
    # Embedding holds no lock: a search meanwhile answers at once from what is committed.
    started = time.monotonic()
    found = run_rag("search", "synthetic study", "-k", "3", "--json", env={"RAG_DATA_DIR": str(data)})
    assert found.returncode == 0 and time.monotonic() - started < 8, found.stderr
    assert len(json.loads(found.stdout)["hits"]) == 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _papers(data)
    assert partial == ingest_module.PAPERS_PER_COMMIT, "the first commit is kept, the second never happened"

    result = run_rag("ingest", str(source), "--json", env={"RAG_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["unchanged"] == partial and report["added"] == n - partial
    settings = Settings(data_dir=data)
    index = Index(settings)
    assert index.catalog.counts()["papers"] == n
    assert index.vectors.count() == index.catalog.counts()["chunks"], "no duplicate or orphan chunks"


def test_open_retriever_sees_an_ingest_from_another_process(tmp_path):
    from rag.retrieval import Retriever

    data = tmp_path / "d"
    settings = Settings(data_dir=data)
    ingest([write_jsonl(tmp_path / "a.jsonl", synthetic_papers(2))], settings)
    retriever = Retriever(settings)  # a running UI holds one of these for hours
    query = "protein folding by denoising diffusion over residue frames"
    assert "needle" not in [h.paper_id for h in retriever.search(query, k=5)]
    needle = [{"id": "needle", "title": "Protein folding with diffusion models",
               "abstract": "We predict protein structures by denoising diffusion over residue frames."}]
    result = run_rag("ingest", str(write_jsonl(tmp_path / "b.jsonl", needle)), env={"RAG_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    for mode in ("dense", "bm25", "hybrid"):
        assert retriever.search(query, k=1, mode=mode)[0].paper_id == "needle", mode


def _chroma_collections(settings) -> set[str]:
    from rag.store import VectorStore

    store = VectorStore(settings)
    names = {c.name for c in store.client().list_collections()}
    store.close()
    return names


def test_rebuild_replaces_the_index_and_an_open_retriever_follows(tmp_path):
    from rag.retrieval import Retriever

    data = tmp_path / "d"
    settings = Settings(data_dir=data)
    ingest([write_jsonl(tmp_path / "a.jsonl", synthetic_papers(3))], settings)
    retriever = Retriever(settings)  # a UI left running across the rebuild
    needle = [{"id": "needle", "title": "Protein folding with diffusion models",
               "abstract": "We predict protein structures by denoising diffusion over residue frames."}]
    result = run_rag("ingest", "--rebuild", str(write_jsonl(tmp_path / "b.jsonl", needle)),
                     env={"RAG_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search("model data learning protein folding", k=5, mode=mode)
        assert [h.paper_id for h in hits] == ["needle"], mode
    assert Index(settings).catalog.counts()["papers"] == 1
    # The old generation is gone once the new one is live: one Chroma collection, one directory.
    assert _chroma_collections(settings) == {"papers-rebuild1"}
    assert not (data / "papers").exists() and (data / "papers.live").read_text().strip() == "papers-rebuild1"


def test_interrupted_rebuild_leaves_the_old_index(tmp_path):
    from rag.ingestion import PAPERS_PER_COMMIT
    from rag.retrieval import Retriever

    settings = Settings(data_dir=tmp_path / "d")
    old = write_jsonl(tmp_path / "a.jsonl", synthetic_papers(3))
    ingest([old], settings)
    n_new = PAPERS_PER_COMMIT + 5
    new = write_jsonl(tmp_path / "b.jsonl", [{**p, "id": f"new-{i}"}
                                              for i, p in enumerate(synthetic_papers(n_new, seed=7))])
    # Ctrl-C lands when the staged collection is half built: its first commit done, not its second.
    with pytest.raises(KeyboardInterrupt):
        ingest([new], settings.model_copy(update={"embedder": "conftest:InterruptingEmbedder"}), rebuild=True)
    hits = Retriever(settings).search("synthetic study", k=10)
    assert sorted(h.paper_id for h in hits) == ["syn-0", "syn-1", "syn-2"]

    report = ingest([new], settings, rebuild=True)  # starts afresh over the leftover staging
    assert (report.added, report.papers_total) == (n_new, n_new)
    assert _chroma_collections(settings) == {"papers-rebuild1"}
    assert Index(settings).vectors.count() == report.chunks_total


def test_search_during_a_write_to_its_collection_waits_then_says_busy_but_other_collections_answer(tmp_path):
    from rag.errors import IndexBusy
    from rag.store import locked, writing

    data = tmp_path / "d"
    settings, big = Settings(data_dir=data), Settings(data_dir=data, collection="big")
    ingest([write_jsonl(tmp_path / "a.jsonl", synthetic_papers(2))], settings)
    ingest([write_jsonl(tmp_path / "b.jsonl", synthetic_papers(2, seed=1))], big)
    env = {"RAG_DATA_DIR": str(data), "RAG_LOCK_WAIT": "1"}
    with writing(big), locked(big, exclusive=True):  # what `rag ingest` into `big` holds for each write
        other = run_rag("search", "model", "--json", env=env, timeout=60)
        result = run_rag("search", "model", env={**env, "RAG_COLLECTION": "big"}, timeout=60)
    assert other.returncode == 0 and len(json.loads(other.stdout)["hits"]) == 2, other.stderr
    assert result.returncode == IndexBusy.exit_code
    assert "ingest is writing" in result.stderr and "'big'" in result.stderr and "Traceback" not in result.stderr


def test_vectors_the_catalog_never_recorded_are_not_returned_and_are_cleaned_up(tmp_path):
    """What a run killed between the vector upsert and the catalog commit leaves behind."""
    from rag.chunking import Chunk
    from rag.retrieval import Retriever

    settings = Settings(data_dir=tmp_path / "d")
    source = write_jsonl(tmp_path / "a.jsonl", synthetic_papers(6))
    ingest([source], settings)
    query = "synthetic study of protein memory kernels"
    index = Index(settings)
    orphans = [Chunk(f"orphan-{i}:0", f"orphan-{i}", 0, query) for i in range(10)]
    # Closer to the query than any paper.
    index.vectors.upsert(orphans, HashEmbedder().encode([query] * 10),
                         {c.paper_id: Paper(c.paper_id, "", query, "x") for c in orphans})
    index.close()

    hits = Retriever(settings).search(query, k=5, mode="dense")
    assert len(hits) == 5 and not any(h.paper_id.startswith("orphan") for h in hits)
    report = ingest([source], settings)  # nothing new, but the next ingest tidies up
    assert report.unchanged == 6
    index = Index(settings)
    assert index.vectors.count() == index.catalog.counts()["chunks"]
    assert not any(pid.startswith("orphan") for pid in index.vectors.paper_ids())


def test_a_keyword_index_left_behind_by_a_killed_ingest_is_rebuilt_by_the_next(tmp_path):
    """Killed after its last catalog commit, before the BM25 rebuild: the next run, which has
    nothing to embed, still brings BM25 up to the catalog."""
    from rag.retrieval import Retriever

    settings = Settings(data_dir=tmp_path / "d")
    first = write_jsonl(tmp_path / "a.jsonl", synthetic_papers(3))
    ingest([first], settings)
    stale = tmp_path / "bm25-before"
    shutil.copytree(tmp_path / "d" / "papers" / "bm25", stale)
    needle = write_jsonl(tmp_path / "b.jsonl", [{"id": "needle", "title": "Protein folding with diffusion models",
                                                 "abstract": "We predict protein structures by denoising diffusion."}])
    ingest([first, needle], settings)
    shutil.rmtree(tmp_path / "d" / "papers" / "bm25")
    shutil.copytree(stale, tmp_path / "d" / "papers" / "bm25")  # what the killed run left

    report = ingest([first, needle], settings)
    assert (report.added, report.unchanged) == (0, 4)
    assert Retriever(settings).search("protein folding diffusion", k=1, mode="bm25")[0].paper_id == "needle"


def test_remove_by_file_or_id_and_sync_take_papers_out_of_every_ranking(tmp_path):
    from rag.ingestion import remove
    from rag.retrieval import Retriever
    from rag.store import Index

    settings = Settings(data_dir=tmp_path / "d")
    needle = {"id": "needle", "title": "Protein folding with diffusion models",
              "abstract": "We predict protein structures by denoising diffusion over residue frames."}
    keep = write_jsonl(tmp_path / "keep.jsonl", synthetic_papers(3))
    (tmp_path / "folder").mkdir()
    drop = write_jsonl(tmp_path / "folder" / "drop.jsonl", [needle, {**synthetic_papers(1, seed=4)[0], "id": "other"}])
    ingest([keep, drop], settings)
    retriever = Retriever(settings)  # a running UI
    query = "protein folding diffusion residue frames"
    assert retriever.search(query, k=1)[0].paper_id == "needle"

    report = remove([str(drop.parent), "syn-0", "no-such-paper"], settings)  # a folder names its files
    assert (report.removed, report.not_found, report.papers_total) == (3, ["no-such-paper"], 2)
    for mode in ("dense", "bm25", "hybrid"):
        assert {h.paper_id for h in retriever.search(query, k=10, mode=mode)} <= {"syn-1", "syn-2"}, mode
    index = Index(settings)
    assert index.vectors.count() == index.catalog.counts()["chunks"]
    assert str(drop.resolve()) not in [f["path"] for f in index.catalog.files()]
    index.close()

    write_jsonl(keep, synthetic_papers(3)[2:])  # the file now holds syn-2 only
    result = run_rag("ingest", "--sync", str(keep), env={"RAG_DATA_DIR": str(settings.data_dir)})
    assert result.returncode == 0 and "1 removed" in result.stdout, result.stderr
    assert [h.paper_id for h in retriever.search("synthetic study", k=10)] == ["syn-2"]


def test_a_paper_ingested_again_from_another_export_stays_one_paper_and_gains_its_metadata(tmp_path):
    """Zotero first, the arXiv snapshot a week later: same DOI, other text. Chroma carries the metadata too."""
    settings = Settings(data_dir=tmp_path / "d")
    base = synthetic_papers(2)
    zotero = [{**base[0], "id": None, "doi": "10.5555/Syn.0", "venue": "Journal of Synthetic Studies"}, base[1]]
    ingest([write_jsonl(tmp_path / "zotero.jsonl", zotero)], settings)
    arxiv = {"title": base[0]["title"], "abstract": base[0]["abstract"] + " Preprint version.",
             "doi": "https://doi.org/10.5555/syn.0", "authors": ["Ada Lovelace", "Alan Turing"], "year": 2021}
    report = ingest([write_jsonl(tmp_path / "arxiv.jsonl", [arxiv])], settings)
    assert (report.added, report.duplicates, report.papers_total) == (0, 1, 2) and report.chunks_embedded == 0
    index = Index(settings)
    try:
        [(pid, meta)] = [(p, m) for p, m in index.catalog.db.execute("select paper_id, meta from papers")
                         if m and "doi" in m]
        assert json.loads(meta) == {"doi": "10.5555/syn.0", "venue": "Journal of Synthetic Studies",
                                    "authors": ["Ada Lovelace", "Alan Turing"], "year": 2021}
        stored = index.vectors.collection(create=False).get(where={"paper_id": pid}, include=["metadatas"])
        assert stored["metadatas"] and all(
            (m["doi"], m["year"], m["authors"]) == ("10.5555/syn.0", 2021, "Ada Lovelace; Alan Turing")
            for m in stored["metadatas"])
    finally:
        index.close()


def test_a_library_larger_than_a_window_streams_through_and_reads_as_one(tmp_path, monkeypatch):
    """The arXiv snapshot (2.7M papers) is read a window at a time; a window boundary must not change what
    an ingest does: every paper once, a duplicate in a later window merged, each file counted whole,
    progress that only moves forward, --sync and a re-ingest exactly as with one window."""
    from rag import ingestion as ingest_module

    monkeypatch.setattr(ingest_module, "PAPERS_PER_WINDOW", 3)
    records = synthetic_papers(8)
    doi = {**synthetic_papers(9)[8], "id": None, "doi": "10.5555/w.8"}
    big = write_jsonl(tmp_path / "big.jsonl", records[:7] + [doi])
    # records[1] again (a later window), and the DOI paper from another export with more text.
    again = write_jsonl(tmp_path / "again.jsonl", [records[1], records[7],
                                                   {**doi, "abstract": doi["abstract"] + " Preprint."}])
    settings = Settings(data_dir=tmp_path / "d")
    seen = []
    report = ingest([big, again], settings, progress=lambda done, total: seen.append((done, total)))
    assert (report.added, report.updated, report.papers_total) == (9, 0, 9)
    assert report.unchanged + report.duplicates == 2   # records[1] and the DOI paper, each met twice
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (report.chunks_embedded,) * 2
    index = Index(settings)
    try:
        assert index.vectors.count() == index.catalog.counts()["chunks"] == report.chunks_total
        # again.jsonl holds syn-1 (indexed from big.jsonl) and syn-7; its DOI paper merged into big's
        assert {f["path"]: f["papers"] for f in index.catalog.files()} == {str(big.resolve()): 8,
                                                                           str(again.resolve()): 2}
    finally:
        index.close()
    from rag.retrieval import Retriever

    assert Retriever(settings).search(records[7]["abstract"][:200], k=1, mode="bm25")[0].paper_id == "syn-7"
    second = ingest([big, again], settings)
    assert (second.added, second.updated, second.chunks_embedded, second.papers_total) == (0, 0, 0, 9)
    write_jsonl(big, records[:5])
    synced = ingest([big], settings, sync=True)
    # syn-5, syn-6 and the DOI paper, first read from big.jsonl; syn-7 stays (read first from again.jsonl)
    assert (synced.removed, synced.papers_total) == (3, 6)


def test_passages_come_back_exactly_whether_chroma_keeps_their_text_or_only_their_span(tmp_path):
    """Chroma keeps a chunk's text only when it cannot be rebuilt from the catalog (a title cut to fit);
    either way a search returns the passage that was embedded."""
    from rag.embedding import load_embedder
    from rag.retrieval import Retriever

    long_title = "A study of " + " ".join(f"factor{i}" for i in range(90))
    records = [{**synthetic_papers(2)[0], "title": long_title}, synthetic_papers(2)[1]]
    settings = Settings(data_dir=tmp_path / "d")
    ingest([write_jsonl(tmp_path / "p.jsonl", records)], settings)
    index = Index(settings)
    try:
        stored = index.vectors.collection(create=False).get(include=["documents", "metadatas"])
    finally:
        index.close()
    kept = {i.split(":")[0] for i, d in zip(stored["ids"], stored["documents"]) if d is not None}
    assert kept == {"syn-0"} and all("start" in m for i, m in zip(stored["ids"], stored["metadatas"])
                                      if i.startswith("syn-1"))
    from rag.chunking import Chunker
    from rag.sources import load

    embedder = load_embedder(settings)
    chunker = Chunker(embedder.tokenizer(), settings.chunk_tokens, settings.chunk_overlap)
    papers = {p.paper_id: p for p in load([tmp_path / "p.jsonl"]).papers}
    retriever = Retriever(settings)
    for pid in ("syn-0", "syn-1"):
        [hit] = [h for h in retriever.search(records[int(pid[-1])]["abstract"][:300], k=2) if h.paper_id == pid]
        assert hit.passage in {c.text for c in chunker.chunks(papers[pid])}
        assert hit.passage.split("\n", 1)[0] != long_title   # syn-0's title was cut to fit
