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
