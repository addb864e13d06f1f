"""The index on a disk that fills up, and on a read-only file system: real mounts (tmpfs, a
read-only bind mount), which need root, as CI and this machine have. Where mounting is not
permitted the tests say so and skip."""
from __future__ import annotations

import json
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


def papers(env) -> tuple[int, int]:
    """(papers the catalog holds, chunks the vector store holds)."""
    status = json.loads(run_rag("status", "--json", env=env).stdout)
    return status["papers"], status["chunks"]


def test_a_full_disk_stops_an_ingest_in_one_line_and_costs_nothing(tmp_path, mounts):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk))
    mounts.append(disk)
    env = {"RAG_DATA_DIR": str(disk / "data"), "RAG_MIN_FREE_MB": "5"}
    first = write_jsonl(tmp_path / "first.jsonl", [*synthetic_papers(5), NEEDLE])
    assert run_rag("ingest", str(first), env=env).returncode == 0
    before = papers(env)

    # Something else fills the disk to 8 MB free; 300 more papers need about 15.
    filler = disk / "filler"
    import shutil

    with open(filler, "wb") as f:
        f.truncate(0)
        f.write(b"\0" * int(shutil.disk_usage(disk).free - 8e6))
    more = write_jsonl(tmp_path / "more.jsonl", [{**p, "id": f"more-{i}"}
                                                 for i, p in enumerate(synthetic_papers(300, seed=3))])
    result = run_rag("ingest", str(more), env=env)
    one_clear_line(result, "disk holding", "is full", "MB free", "MB needed")
    assert result.returncode == 74

    # While the disk is still full: everything indexed before answers, nothing half-written.
    found = run_rag("search", "protein folding diffusion", "-k", "1", "--json", env=env)
    assert found.returncode == 0 and json.loads(found.stdout)["hits"][0]["paper_id"] == "needle"
    assert papers(env) == before
    doctor = run_rag("doctor", "--json", env=env)
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["problems"] == []

    filler.unlink()
    assert run_rag("ingest", str(more), env=env).returncode == 0
    assert papers(env)[0] == 306


def test_an_index_on_a_read_only_file_system_can_be_searched(tmp_path, mounts):
    data = tmp_path / "d"
    env = {"RAG_DATA_DIR": str(data)}
    source = write_jsonl(tmp_path / "p.jsonl", [*synthetic_papers(5), NEEDLE])
    assert run_rag("ingest", str(source), env=env).returncode == 0
    shipped = tmp_path / "ro"
    shipped.mkdir()
    mount("--bind", str(data), str(shipped))
    mounts.append(shipped)
    mount("-o", "remount,bind,ro", str(shipped))

    env = {"RAG_DATA_DIR": str(shipped)}
    for mode in ("hybrid", "dense", "bm25"):
        found = run_rag("search", "protein folding diffusion", "-k", "1", "--mode", mode, "--json", env=env)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["hits"][0]["paper_id"] == "needle", mode
    assert run_rag("ask", "How are protein structures predicted?", env=env).returncode == 0
    assert papers(env)[0] == 6
    one_clear_line(run_rag("ingest", str(source), env=env), "not writable")
