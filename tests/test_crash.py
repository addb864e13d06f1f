"""SIGKILL at each step of a write (tests/killpoint.py names the steps): the index stays whole and
searchable, `rag doctor` finds nothing it cannot mend, and running the same command again finishes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import synthetic_papers, write_jsonl

from rag.ingestion import PAPERS_PER_COMMIT, doctor, ingest
from rag.retrieval import Retriever
from rag.settings import MODES, Settings
from rag.store import Index, VectorStore, status

KILLPOINT = Path(__file__).parent / "killpoint.py"
OLD_NEEDLE = {"id": "old-needle", "title": "Protein folding with diffusion models",
              "abstract": "We predict protein structures by denoising diffusion over residue frames."}
NEW_NEEDLE = {"id": "new-needle", "title": "Weather forecasting with graph networks",
              "abstract": "A graph network forecasts global weather ten days ahead from reanalysis fields."}


def killed(point: str, settings: Settings, *args: str) -> None:
    result = subprocess.run([sys.executable, str(KILLPOINT), point, *args], capture_output=True, text=True,
                            env={**os.environ, "RAG_DATA_DIR": str(settings.data_dir)}, timeout=300)
    assert result.returncode == -signal.SIGKILL, (point, result.returncode, result.stderr[-2000:])


def first_hit(retriever: Retriever, query: str) -> dict[str, str]:
    return {mode: retriever.search(query, k=3, mode=mode)[0].paper_id for mode in MODES}


def generations(settings: Settings) -> tuple[set[str], set[str]]:
    """(index directories, Chroma collections) under the data dir."""
    dirs = {p.name for p in settings.data_dir.iterdir() if (p / "catalog.sqlite").exists()}
    store = VectorStore(settings)
    names = {c.name for c in store.client().list_collections()}
    store.close()
    return dirs, names


@pytest.mark.parametrize("point, live", [("staged", "old"), ("switched", "new"), ("old-half-dropped", "new")])
def test_a_rebuild_killed_at_each_step_leaves_one_whole_index(tmp_path, point, live):
    settings = Settings(data_dir=tmp_path / "d")
    old = write_jsonl(tmp_path / "old.jsonl", [*synthetic_papers(3), OLD_NEEDLE])
    new = write_jsonl(tmp_path / "new.jsonl", [{**p, "id": f"new-{i}"} for i, p in
                                                enumerate(synthetic_papers(4, seed=7))] + [NEW_NEEDLE])
    ingest([old], settings)
    killed(point, settings, "ingest", "--rebuild", str(new))

    needle = OLD_NEEDLE if live == "old" else NEW_NEEDLE
    retriever = Retriever(settings)
    assert set(first_hit(retriever, needle["title"]).values()) == {needle["id"]}
    assert status(settings)["papers"] == (4 if live == "old" else 5)
    assert doctor(settings).problems == []

    report = ingest([new], settings, rebuild=True)  # the same command again
    assert report.papers_total == 5
    assert set(first_hit(retriever, NEW_NEEDLE["title"]).values()) == {"new-needle"}, "an open reader follows"
    dirs, collections = generations(settings)
    assert len(dirs) == 1 and dirs == collections, "nothing left of earlier generations"


@pytest.mark.parametrize("point", ["upserted", "bm25-build", "bm25-renames"])
def test_an_ingest_killed_at_each_write_stays_searchable_and_a_rerun_finishes_it(tmp_path, point):
    settings = Settings(data_dir=tmp_path / "d")
    old = write_jsonl(tmp_path / "old.jsonl", [*synthetic_papers(3), OLD_NEEDLE])
    # "upserted" dies between the vectors of its second commit and the commit: it needs two.
    n = PAPERS_PER_COMMIT + 3 if point == "upserted" else 4
    new = write_jsonl(tmp_path / "new.jsonl", [{**p, "id": f"new-{i}"} for i, p in enumerate(
        synthetic_papers(n, seed=7))] + [NEW_NEEDLE])
    ingest([old], settings)
    killed(point, settings, "ingest", str(new))

    retriever = Retriever(settings)
    assert set(first_hit(retriever, OLD_NEEDLE["title"]).values()) == {"old-needle"}
    hits = retriever.search(NEW_NEEDLE["abstract"], k=5, mode="dense")
    assert len(hits) == 5, "vectors the catalog never recorded do not take the place of real hits"

    report = ingest([new], settings)
    assert report.papers_total == n + 5
    assert set(first_hit(retriever, NEW_NEEDLE["title"]).values()) == {"new-needle"}, "BM25 caught up too"
    index = Index(settings)
    assert index.vectors.count() == index.catalog.counts()["chunks"]
    assert doctor(settings).repaired == []
