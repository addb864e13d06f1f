"""`rag chat`: the session's commands and history directly, and the terminal loop through a real
pseudo-terminal (pexpect), as a user types into it."""
from __future__ import annotations

import io
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pexpect
import pytest
from conftest import ROOT, ScriptedBackend

from rag.answer import Done, Token
from rag.chat import COMMANDS, MAX_K, ChatSession


def _answer(session: ChatSession, question: str):
    return next(e.answer for e in session.ask(question) if isinstance(e, Done))


def test_a_follow_up_is_searched_with_the_conversation_as_the_ui_does(fake_seed_settings):
    backend = ScriptedBackend("LoRA-GA aligns the gradients of the low-rank product with full fine-tuning [1].",
                              "How fast does LoRA-GA converge compared with LoRA?", "Faster [1].")
    session = ChatSession(fake_seed_settings, backend=backend)
    _answer(session, "What does LoRA-GA do?")
    second = _answer(session, "And how fast does it converge?")
    assert second.query == "How fast does LoRA-GA converge compared with LoRA?"
    assert "LoRA-GA aligns the gradients" in backend.sent[1][0].content   # the condense prompt saw turn one
    assert "LoRA-GA" in second.sources[0].title


def test_an_answer_stopped_part_way_is_not_kept_for_follow_ups(fake_seed_settings):
    session = ChatSession(fake_seed_settings, backend=ScriptedBackend("one two three four five [1]."))
    events = session.ask("What is QuantMCU?")
    next(e for e in events if isinstance(e, Token))
    events.close()   # what Ctrl-C does
    assert session.turns == [] and session.last is None


def test_commands(fake_seed_settings):
    session = ChatSession(fake_seed_settings)
    assert session.command("/sources").error   # nothing asked yet
    assert session.command("/cite").error
    assert session.command("/k 3").text and session.k == 3
    answer = _answer(session, "What is QuantMCU?")
    assert len(answer.sources) == 3 and "QuantMCU" in answer.answer
    reply = session.command("/sources")
    assert [s.paper_id for s in reply.sources] == [s.paper_id for s in answer.sources]
    assert "@" in session.command("/cite bibtex").text and "TY  -" in session.command("/cite ris").text
    for bad in ("/k 0", f"/k {MAX_K + 1}", "/k many", "/llm gpt5", "/cite word", "/frobnicate"):
        assert session.command(bad).error, bad
    assert session.command("/llm ollama llama3.2").text and session.asker.backend_name == "ollama"
    assert session.asker.settings.llm_model == "llama3.2"
    assert session.command("/new").text and session.turns == [] and session.last is None
    assert all(name.split()[0] in session.command("/help").text for name in COMMANDS)
    assert session.command("/quit").quit and session.command("/EXIT").quit


# --- the terminal -------------------------------------------------------------------------------------
class _SlowOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible server whose answer comes one word every 0.3 s, in its real SSE format:
    long enough to press Ctrl-C in the middle."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for i in range(100):
                delta = {"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}
                chunk = json.dumps({"choices": [delta]})
                self.wfile.write(f"data: {chunk}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client hung up: what Ctrl-C should cause

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slow_llm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _env(data_dir: Path, env: dict | None = None) -> dict:
    import os

    return {**os.environ, "RAG_DATA_DIR": str(data_dir), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm",
            "COLUMNS": "200", "LINES": "50", **(env or {})}


def _ignoring_sigint() -> None:
    # Started with SIGINT ignored, as a background job of a script (and our CI runner) starts it:
    # Ctrl-C must still stop an answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_terminal_chat_session(seed_dir, real_model):
    """prompt-toolkit in a real pseudo-terminal: a question, its cited answer, the sources, /quit.
    (The longer session below is typed through a pipe: under a loaded CI machine a line typed into the
    pty was twice never delivered to the prompt, while the same session by hand never lost one.)"""
    child = pexpect.spawn(sys.executable, ["-m", "rag", "chat"], cwd=str(ROOT), env=_env(seed_dir),
                          encoding="utf-8", timeout=120, dimensions=(50, 200), preexec_fn=_ignoring_sigint)
    child.logfile_read = io.StringIO()   # the whole transcript, for the failure message
    try:
        child.expect("/help for commands")
        child.expect("›")
        child.sendline("What is QuantMCU?")
        child.expect(r"QuantMCU.*\[1\]")                  # the answer streams with its citation,
        child.expect("Sources")                            # then the sources
        child.expect(r"\[1\] Value-Driven Mixed-Precision Quantization")
        child.expect("›")
        child.sendeof()
        child.expect(pexpect.EOF)
    except pexpect.TIMEOUT:
        pytest.fail("rag chat did not show what was expected; it showed:\n" + child.logfile_read.getvalue()[-3000:])
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before


def test_a_chat_session_typed_through_a_pipe(seed_dir, real_model, slow_llm):
    from pexpect.popen_spawn import PopenSpawn

    child = PopenSpawn([sys.executable, "-m", "rag", "chat"], cwd=str(ROOT), env=_env(seed_dir, {
        "OPENAI_BASE_URL": slow_llm}), encoding="utf-8", timeout=120, preexec_fn=_ignoring_sigint)
    child.logfile_read = io.StringIO()
    try:
        child.expect("/help for commands")
        child.sendline("What is QuantMCU?")
        child.expect(r"\[1\] Value-Driven Mixed-Precision Quantization")
        child.sendline("/sources")
        child.expect("VDPC classifies patches into two classes")   # the whole abstract, not the snippet
        child.sendline("/k 2")
        child.expect("2 sources")
        child.sendline("How much computation does it save?")   # a follow-up: "it" is QuantMCU
        child.expect(r"2\.2x.*\[1\]")
        child.expect(r"\[1\] Value-Driven Mixed-Precision Quantization")
        # Ctrl-C stops an answer, not the chat: a new thread (so no condensing request), a model
        # that writes slowly, and SIGINT (what Ctrl-C sends) while it writes.
        child.sendline("/new")
        child.expect("new conversation")
        child.sendline("/llm openai model-x")
        child.expect("answering with openai")
        child.sendline("What is QuantMCU?")
        child.expect("word2 ")
        child.kill(signal.SIGINT)
        child.expect("stopped")
        assert "decision:" not in child.before   # stopped before the end, not printed after it
        child.sendline("/k 3")
        child.expect("3 sources")                # the chat goes on
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    except pexpect.TIMEOUT:
        child.proc.kill()
        pytest.fail("rag chat did not show what was expected; it showed:\n" + child.logfile_read.getvalue()[-3000:])
    assert child.wait() == 0

