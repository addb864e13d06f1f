"""`rag mcp` end to end: the real server process on the real-model seed index, driven over stdio
by the MCP SDK's own client, as an assistant would drive it."""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import ROOT
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The paper of q001 in evals/questions.jsonl, in search-box words: first by a wide margin in every mode.
QUERY = "pruning deep reinforcement learning networks"
PAPER_ID = "e80ff85a6d70526f"
PAPER_TITLE = "In deep reinforcement learning, a pruned network is a good network"
SERVER = [sys.executable, "-m", "rag", "mcp"]   # `rag mcp`, as an assistant starts it


def _env(data_dir: Path) -> dict[str, str]:
    # The client passes only HOME, PATH and the like: the index is named explicitly, as in a client config.
    return {"RAG_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}


@asynccontextmanager
async def _connect(data_dir: Path, errlog: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=_env(data_dir), cwd=ROOT)
    with open(errlog, "w") as err:
        async with stdio_client(params, errlog=err) as (read, write), \
                ClientSession(read, write, read_timeout_seconds=120) as session:
            await session.initialize()
            yield session


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(seed_dir, anyio_backend, tmp_path_factory) -> AsyncIterator[ClientSession]:
    """One server for the module, on the shared seed index (read-only)."""
    async with _connect(seed_dir, tmp_path_factory.mktemp("mcp") / "stderr.txt") as session:
        yield session


def _error_text(result) -> str:
    assert result.is_error, result
    return " ".join(block.text for block in result.content)


async def test_lists_three_read_only_tools_with_schemas(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"search_papers", "ask_papers", "get_paper"}, "read-only: no ingest or remove"
    search = tools["search_papers"].input_schema
    assert search["required"] == ["query"]
    assert set(search["properties"]) == {"query", "k", "mode", "since", "until", "author", "venue"}
    assert search["properties"]["mode"]["enum"] == ["hybrid", "dense", "bm25"]
    assert tools["ask_papers"].input_schema["required"] == ["question"]
    assert tools["get_paper"].input_schema["required"] == ["paper_id"]
    for tool in tools.values():
        assert len(tool.description) > 100, f"{tool.name}: an assistant decides from this"
        assert tool.annotations.read_only_hint


async def test_search_finds_the_paper_first(client):
    result = await client.call_tool("search_papers", {"query": QUERY, "k": 3})
    assert not result.is_error, result.content
    hits = result.structured_content["hits"]
    assert len(hits) == 3
    assert (hits[0]["paper_id"], hits[0]["title"]) == (PAPER_ID, PAPER_TITLE)
    assert {"rank", "paper_id", "title", "abstract", "score", "date", "meta"} <= hits[0].keys()
    assert json.loads(result.content[0].text) == result.structured_content, "the same JSON as text for older clients"

    keywords = await client.call_tool("search_papers", {"query": "gradual magnitude pruning", "mode": "bm25", "k": 1})
    assert keywords.structured_content["hits"][0]["paper_id"] == PAPER_ID


async def test_rag_errors_are_tool_errors_with_rag_s_message(client):
    assert "the query is empty" in _error_text(await client.call_tool("search_papers", {"query": "   "}))
    swapped = await client.call_tool("search_papers", {"query": QUERY, "since": 2025, "until": 2020})
    assert "since 2025 is after until 2020" in _error_text(swapped)
    assert "mode" in _error_text(await client.call_tool("search_papers", {"query": QUERY, "mode": "fuzzy"}))
    # The server is still there after all of them.
    assert not (await client.call_tool("search_papers", {"query": QUERY, "k": 1})).is_error


async def test_get_paper_returns_the_full_abstract(client):
    paper = (await client.call_tool("get_paper", {"paper_id": PAPER_ID})).structured_content
    assert (paper["paper_id"], paper["title"]) == (PAPER_ID, PAPER_TITLE)
    assert "gradual magnitude pruning" in paper["abstract"] and paper["abstract"].endswith("full network parameters.")
    hit = (await client.call_tool("search_papers", {"query": QUERY, "k": 1})).structured_content["hits"][0]
    assert paper["abstract"] == hit["abstract"]
    assert paper["source"].endswith(".txt")


async def test_get_paper_of_an_unknown_id_is_a_clear_tool_error(client):
    message = _error_text(await client.call_tool("get_paper", {"paper_id": "0000000000000000"}))
    assert "no paper with id '0000000000000000'" in message and "search_papers" in message


async def test_ask_papers_answers_with_checked_citations(client):
    result = await client.call_tool("ask_papers", {"question": "What does LoRA-GA align at the first step?"})
    answer = result.structured_content
    assert (answer["decision"], answer["refused"], answer["verified"], answer["backend"]) == \
        ("answer", False, True, "extractive")
    assert "LoRA-GA" in answer["sources"][0]["title"]
    assert "[1]" in answer["answer"] and "gradient" in answer["answer"]
    assert set(answer["sources"][0]) == {"n", "paper_id", "title", "abstract", "meta"}

    off_topic = await client.call_tool("ask_papers", {"question": "What is the capital of France?"})
    off_topic = off_topic.structured_content
    assert (off_topic["decision"], off_topic["refused"]) == ("refuse", True)
    assert "does not cover" in off_topic["answer"]


async def test_status_resource(client):
    resources = (await client.list_resources()).resources
    assert [str(r.uri) for r in resources] == ["rag://status"]
    contents = (await client.read_resource("rag://status")).contents
    info = json.loads(contents[0].text)
    assert info["papers"] > 150 and info["embed_model"] == "all-MiniLM-L6-v2 (int8)"   # the default encoder
    assert "titles" not in info


async def test_an_empty_data_dir_is_a_clear_error_not_a_crash(tmp_path, anyio_backend):
    async with _connect(tmp_path / "nothing", tmp_path / "stderr.txt") as session:
        for name, args in [("search_papers", {"query": "LoRA"}), ("ask_papers", {"question": "What is LoRA?"}),
                           ("get_paper", {"paper_id": PAPER_ID})]:
            message = _error_text(await session.call_tool(name, args))
            assert "no index in" in message and "rag ingest" in message, message
        status = json.loads((await session.read_resource("rag://status")).contents[0].text)
        assert status["papers"] == 0
    assert not (tmp_path / "nothing").exists(), "a read-only server creates nothing"


def test_stdout_carries_nothing_but_protocol(seed_dir, tmp_path):
    """Raw JSON-RPC, as an older client (protocol 2025-06-18) sends it: every stdout line, from start-up
    through loading the model and index to exit, is a JSON-RPC message."""
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                          **_env(seed_dir)})
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()

    def send(message: dict) -> None:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        proc.stdin.flush()

    def reply() -> dict:
        line = lines.get(timeout=120)
        assert line is not None, "the server exited early: " + (tmp_path / "stderr.txt").read_text()
        return json.loads(line)

    try:
        send({"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        assert reply()["result"]["serverInfo"]["name"] == "rag"
        send({"method": "notifications/initialized"})
        send({"id": 2, "method": "tools/call", "params": {"name": "search_papers", "arguments": {"query": QUERY}}})
        found = reply()
        assert found["id"] == 2 and not found["result"].get("isError"), found
        assert json.loads(found["result"]["content"][0]["text"])["hits"][0]["paper_id"] == PAPER_ID
        proc.stdin.close()  # the client goes away: the server exits on its own
        assert proc.wait(timeout=30) == 0
        rest = []
        while (line := lines.get(timeout=10)) is not None:
            rest.append(line)
        assert [json.loads(line)["jsonrpc"] for line in rest] == ["2.0"] * len(rest)
    finally:
        proc.kill()
