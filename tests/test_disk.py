"""The index on a disk that fills up, and on a read-only file system: real mounts (tmpfs, a
read-only bind mount), which need root, as CI and this machine have. Where mounting is not
permitted the tests say so and skip."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import run_rag, synthetic_papers, write_jsonl

NEEDLE = {"id": "needle", "title": "Protein folding with diffusion models",
          "abstract": "We predict protein structures by denoising diffusion over residue frames."}


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount here ({result.stderr.strip()}); these tests need root")


@pytest.fixture
def mounts():
    made = []
    yield made
    for point in reversed(made):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def one_clear_line(result, *words):
    assert result.returncode != 0 and "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def papers(settings) -> int:
    from rag.store import status

    return status(settings)["papers"]


def top(settings, query: str, mode: str = "hybrid") -> str:
    from rag.retrieval import Retriever

    return Retriever(settings).search(query, k=1, mode=mode)[0].paper_id


def test_a_full_disk_stops_an_ingest_in_one_line_and_costs_nothing(tmp_path, mounts):
    from rag.ingestion import doctor, ingest
    from rag.settings import Settings
    from rag.store import Index

    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk))
    mounts.append(disk)
    settings = Settings(data_dir=disk / "data", min_free_mb=5)
    ingest([write_jsonl(tmp_path / "first.jsonl", [*synthetic_papers(5), NEEDLE])], settings)

    # Something else fills the disk to 8 MB free; 150 more papers (300 chunks) need about 12.
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * int(shutil.disk_usage(disk).free - 8e6))
    more = write_jsonl(tmp_path / "more.jsonl", [{**p, "id": f"more-{i}"}
                                                 for i, p in enumerate(synthetic_papers(150, seed=3))])
    result = run_rag("ingest", str(more), env={"RAG_DATA_DIR": str(settings.data_dir), "RAG_MIN_FREE_MB": "5"})
    one_clear_line(result, "disk holding", "is full", "MB free", "MB needed")
    assert result.returncode == 74

    # While the disk is still full: everything indexed before answers, nothing half-written.
    assert top(settings, "protein folding diffusion") == "needle"
    assert papers(settings) == 6
    index = Index(settings)
    assert index.vectors.count() == index.catalog.counts()["chunks"], "no vectors without their paper"
    index.close()
    assert doctor(settings).problems == []

    filler.unlink()
    assert ingest([more], settings).papers_total == 156


def test_an_index_on_a_read_only_file_system_can_be_searched(tmp_path, mounts):
    from rag.answer import Asker
    from rag.errors import ConfigError
    from rag.ingestion import ingest
    from rag.settings import Settings

    source = write_jsonl(tmp_path / "p.jsonl", [*synthetic_papers(5), NEEDLE])
    ingest([source], Settings(data_dir=tmp_path / "d"))
    shipped = tmp_path / "ro"
    shipped.mkdir()
    mount("--bind", str(tmp_path / "d"), str(shipped))
    mounts.append(shipped)
    mount("-o", "remount,bind,ro", str(shipped))

    found = run_rag("search", "protein folding diffusion", "-k", "1", "--json", env={"RAG_DATA_DIR": str(shipped)})
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["paper_id"] == "needle"
    settings = Settings(data_dir=shipped)
    for mode in ("dense", "bm25"):
        assert top(settings, "protein folding diffusion", mode) == "needle", mode
    assert not Asker(settings).ask("How are protein structures predicted?").error
    assert papers(settings) == 6
    with pytest.raises(ConfigError, match="not writable"):
        ingest([source], settings)
