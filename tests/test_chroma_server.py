"""The same ingest/search code against a real `chroma run` server on 127.0.0.1."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_rag, synthetic_papers, write_jsonl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"ANONYMIZED_TELEMETRY": "False", "PATH": str(Path(sys.executable).parent)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma run did not come up")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
def test_ingest_and_search_through_a_chroma_server(chroma_server, tmp_path):
    records = synthetic_papers(4)
    records.append({"id": "needle", "title": "Protein folding with diffusion models",
                    "abstract": "We predict protein structures by denoising diffusion over residue frames."})
    source = write_jsonl(tmp_path / "papers.jsonl", records)
    env = {"RAG_DATA_DIR": str(tmp_path / "d"), "RAG_CHROMA_URL": chroma_server}
    ingested = run_rag("ingest", str(source), "--json", env=env)
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["added"] == 5
    assert not (tmp_path / "d" / "chroma").exists(), "vectors must live on the server"
    count = httpx.get(f"{chroma_server}/api/v2/tenants/default_tenant/databases/default_database/collections")
    assert any(c["name"] == "papers" for c in count.json())
    found = run_rag("search", "how do proteins fold", "--json", "-k", "1", "--mode", "dense", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["paper_id"] == "needle"


def test_unreachable_chroma_server_is_one_line(tmp_path, fake_seed_dir):
    env = {"RAG_DATA_DIR": str(fake_seed_dir), "RAG_CHROMA_URL": f"http://127.0.0.1:{_free_port()}"}
    result = run_rag("search", "anything", env=env)
    assert result.returncode != 0
    assert "Chroma server" in result.stderr and "Traceback" not in result.stderr


# --- many machines: the server is the source of truth, each node's data dir a cache of it -----------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from chroma_server.__wrapped__(tmp_path_factory.mktemp("chroma"))


@pytest.fixture
def nodes(server, tmp_path, monkeypatch):
    """Node A and node B: two data dirs, one server collection (named for the test)."""
    from rag.settings import Settings

    name = f"c{abs(hash(tmp_path.name)) % 10**8}"
    return [Settings(data_dir=tmp_path / node, chroma_url=server, collection=name, follow_every=0) for node in "AB"]


def _no_embedding(monkeypatch):
    from conftest import HashEmbedder

    def refuse(self, texts, progress=None):
        raise AssertionError(f"node B embedded {len(texts)} chunks")

    monkeypatch.setattr(HashEmbedder, "encode", refuse)


def _top(retriever, query: str = "protein memory kernel attention", k: int = 10) -> list[tuple[str, float]]:
    return [(h.paper_id, round(h.score, 6)) for h in retriever.search(query, k=k)]


def test_a_second_node_searches_what_the_first_ingested_without_embedding_and_follows_its_changes(
        nodes, tmp_path, monkeypatch):
    from rag.ingestion import ingest, remove
    from rag.retrieval import Retriever

    a, b = nodes
    ingest([write_jsonl(tmp_path / "first.jsonl", synthetic_papers(12))], a)
    top_a, bm25_a = _top(Retriever(a)), Retriever(a).search("robot policy reward", k=5, mode="bm25")
    with monkeypatch.context() as m:
        _no_embedding(m)
        reader = Retriever(b)
        assert _top(reader) == top_a and len(top_a) == 10
        # BM25 was built from the server's text: the same keyword ranking.
        assert reader.search("robot policy reward", k=5, mode="bm25") == bm25_a

    more = [{**p, "id": f"more-{i}"} for i, p in enumerate(synthetic_papers(3, seed=7))]
    ingest([write_jsonl(tmp_path / "more.jsonl", more)], a)
    remove(["syn-0"], a)
    with monkeypatch.context() as m:
        _no_embedding(m)
        ids = {h.paper_id for h in reader.search("synthetic study", k=20)}   # the same open reader
        assert {"more-0", "more-1", "more-2"} <= ids and "syn-0" not in ids and len(ids) == 14
        assert _top(reader) == _top(Retriever(a))

    # A rebuild on A switches the server to a new generation; B follows it and drops its old cache.
    ingest([write_jsonl(tmp_path / "rebuilt.jsonl", synthetic_papers(4, seed=3))], a, rebuild=True)
    with monkeypatch.context() as m:
        _no_embedding(m)
        assert {h.paper_id for h in reader.search("synthetic study", k=20)} == {f"syn-{i}" for i in range(4)}
    assert sorted(p.name for p in b.data_dir.iterdir() if p.name.startswith(b.collection)) == [
        f"{b.collection}-rebuild1", f"{b.collection}.live"]


def test_two_nodes_ingesting_into_one_server_collection_at_once_both_see_everything(nodes, tmp_path):
    """Safe by construction: upserts keyed by content ids, each write stamped with its generation and
    published after it; a node re-reads a margin behind the last generation it saw."""
    import threading

    from rag.ingestion import ingest
    from rag.retrieval import Retriever

    a, b = nodes
    batches = {"A": synthetic_papers(40), "B": [{**p, "id": f"b-{i}"} for i, p in enumerate(synthetic_papers(40, 9))]}
    errors: list[BaseException] = []

    def run(node, name):
        try:
            ingest([write_jsonl(tmp_path / f"{name}.jsonl", batches[name])], node)
        except BaseException as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(node, name)) for node, name in zip(nodes, "AB")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for node in nodes:
        ids = {h.paper_id for h in Retriever(node).search("synthetic study", k=100)}
        assert len(ids) == 80, node.data_dir.name


def test_two_uis_on_two_data_dirs_answer_the_same_question_the_same_way(nodes, tmp_path):
    from rag.ingestion import ingest
    from rag.ui import App

    a, b = nodes
    ingest([write_jsonl(tmp_path / "p.jsonl", synthetic_papers(8))], a)
    answers = []
    for node in nodes:
        *_, final = App(node).chat("Which synthetic study covers protein memory?", [], "extractive", "", "", "",
                                   "", 5)
        answers.append(final[0][-1]["content"])
    assert answers[0] == answers[1] and "[1]" in answers[0]
