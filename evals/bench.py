"""Performance benchmark, side by side in one run (never a timed unit test: this machine is noisy).

    .venv/bin/python evals/bench.py [--json out.json] [--queries 100]

Measures on the seeds, in a throwaway data dir:
  - `python -c "import sentence_transformers"`: the cost a one-shot query must not pay
  - first `rag ingest` of seeds/ and a re-ingest of the unchanged seeds
  - one-shot `rag search` in a new process (cold: imports, index open, query encoder, search)
  - warm query latency in one process: embed + hybrid retrieve, p50/p95 over N queries
  - one-shot `rag ask` (extractive) in a new process
  - warm `rag ask` pipeline overhead: everything but the answer generation, p50/p95
  - with llama.cpp's OpenAI-compatible server (xllamacpp + SmolLM2, when installed): rag's time to
    first token next to a bare HTTP client's and the server's own prompt time, same prompts
and prints the ratios the targets are stated in.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def warm_queries(data_dir: Path, n: int) -> dict:
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.sources import load

    retriever = Retriever(Settings(data_dir=data_dir))
    papers = load([ROOT / "seeds"]).papers
    # Queries drawn from the collection: a few words from each abstract's middle.
    queries = [" ".join(p.abstract.split()[10:17]) for p in papers][:n]
    while len(queries) < n:
        queries += queries[: n - len(queries)]
    retriever.search(queries[0])  # load the encoder and BM25 once, as a running UI would have
    times = []
    for q in queries:
        start = time.perf_counter()
        retriever.search(q, k=5)
        times.append((time.perf_counter() - start) * 1000)
    return {"queries": n, "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(percentile(times, 0.95), 2)}


def warm_ask(data_dir: Path, questions: list[str]) -> dict:
    from rag.answer import Asker
    from rag.settings import Settings

    asker = Asker(Settings(data_dir=data_dir))
    asker.ask(questions[0])
    overhead = sorted(asker.ask(q).timings_ms["overhead"] for q in questions)
    return {"questions": len(questions), "overhead_p50_ms": round(statistics.median(overhead), 2),
            "overhead_p95_ms": round(percentile(overhead, 0.95), 2)}


def ttft_llamacpp(data_dir: Path, questions: list[str]) -> dict | None:
    """rag's time to first token through its OpenAI backend vs. the same prompt sent bare."""
    sys.path.insert(0, str(ROOT / "tests"))
    import httpx
    from llama_server import LlamaServer, smollm2_gguf

    from rag.answer import Asker, Token
    from rag.settings import Settings

    gguf = smollm2_gguf()
    if gguf is None:
        return None
    server = LlamaServer(gguf, Path(tempfile.mkstemp(suffix=".log")[1]), n_predict=16)
    try:
        settings = Settings(data_dir=data_dir, llm="openai", openai_base_url=server.url)
        asker = Asker(settings)
        backend = asker.backend()
        client = httpx.Client(timeout=60)
        asker.ask(questions[0])  # warm the server, the encoder and the client
        ours, bare, server_ms = [], [], []

        for q in questions:
            # rag first, on a prompt the server has not seen (only the shared system-prompt prefix
            # can be cached); then the same prompt sent bare with the server's prompt cache off.
            began = time.perf_counter()
            events = asker.stream(q)  # the whole path: retrieve, prompt, stream
            for event in events:
                if isinstance(event, Token):
                    ours.append((time.perf_counter() - began) * 1000)
                    break
            events.close()  # ends the HTTP stream too
            from rag.answer import Source

            hits = asker.retriever.search(q)
            messages = asker.messages(q, [Source.from_hit(i, h) for i, h in enumerate(hits, 1)])
            payload = {"model": backend.model, "stream": True, "temperature": 0, "max_tokens": 1,
                       "cache_prompt": False,
                       "messages": [{"role": m.role, "content": m.content} for m in messages]}
            began = time.perf_counter()
            first = None
            with client.stream("POST", f"{backend.url}/chat/completions", json=payload) as response:
                for line in response.iter_lines():
                    if first is None and '"content":"' in line:
                        first = (time.perf_counter() - began) * 1000
                    if '"timings"' in line:
                        server_ms.append(json.loads(line.removeprefix("data: "))["timings"]["prompt_ms"])
            bare.append(first or 0.0)
        return {"questions": len(questions), "rag_ttft_p50_ms": round(statistics.median(ours), 1),
                "bare_http_ttft_p50_ms": round(statistics.median(bare), 1),
                "server_prompt_ms_p50": round(statistics.median(server_ms), 1) if server_ms else None}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each one-shot command (median taken)")
    args = parser.parse_args()

    py = sys.executable
    rag = [py, "-m", "rag.cli"]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        env = {**os.environ, "RAG_DATA_DIR": tmp, "HF_HUB_OFFLINE": "1"}
        figures: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                     "platform": platform.platform()}}
        st_import = statistics.median(timed([py, "-c", "import sentence_transformers"], env, args.repeat))
        first = timed(rag + ["ingest", "seeds"], env)[0]
        again = statistics.median(timed(rag + ["ingest", "seeds"], env, args.repeat))
        one_shot = statistics.median(timed(rag + ["search", "low-rank adaptation initialization", "-k", "5"],
                                           env, args.repeat))
        status = json.loads(subprocess.run(rag + ["status", "--json"], env=env, capture_output=True,
                                           text=True, check=True).stdout)
        ask_one_shot = statistics.median(timed(rag + ["ask", "What does LoRA-GA align at the first step?"],
                                               env, args.repeat))
        os.environ["RAG_DATA_DIR"] = tmp
        warm = warm_queries(Path(tmp), args.queries)
        questions = [json.loads(line)["question"] for line in (ROOT / "evals" / "questions.jsonl").open()][:40]
        ask = warm_ask(Path(tmp), questions)
        ttft = ttft_llamacpp(Path(tmp), questions[:5])

    figures.update({
        "papers": status["papers"], "chunks": status["chunks"],
        "import_sentence_transformers_s": round(st_import, 2),
        "first_ingest_s": round(first, 2), "first_ingest_papers_per_s": round(status["papers"] / first, 1),
        "reingest_s": round(again, 2), "reingest_ratio": round(again / first, 3),
        "one_shot_search_s": round(one_shot, 2), "one_shot_vs_st_import": round(one_shot / st_import, 3),
        "warm_query": warm, "one_shot_ask_s": round(ask_one_shot, 2),
        "one_shot_ask_vs_st_import": round(ask_one_shot / st_import, 3), "warm_ask": ask, "ttft_llamacpp": ttft,
    })
    rows = [
        ("import sentence_transformers (new process)", f"{st_import:.2f} s", ""),
        (f"first ingest of seeds ({status['papers']} papers, {status['chunks']} chunks)", f"{first:.2f} s",
         f"{status['papers'] / first:.1f} papers/s"),
        ("re-ingest, unchanged seeds", f"{again:.2f} s", f"{again / first:.3f} × first (target ≤ 0.333)"),
        ("one-shot `rag search` (new process)", f"{one_shot:.2f} s",
         f"{one_shot / st_import:.3f} × ST import (target ≤ 0.333)"),
        (f"warm query p50 / p95 ({warm['queries']} queries)", f"{warm['p50_ms']} / {warm['p95_ms']} ms",
         "target p50 ≤ 15 ms"),
        ("one-shot `rag ask` (extractive, new process)", f"{ask_one_shot:.2f} s",
         f"{ask_one_shot / st_import:.3f} × ST import"),
        (f"warm `rag ask` pipeline overhead p50 / p95 ({ask['questions']} questions)",
         f"{ask['overhead_p50_ms']} / {ask['overhead_p95_ms']} ms", "target < 50 ms"),
    ]
    if ttft:
        rows.append((f"time to first token, `rag ask` over llama.cpp SmolLM2, 1 thread ({ttft['questions']} "
                     "questions, p50; same prompts)",
                     f"rag {ttft['rag_ttft_p50_ms']} ms", f"bare HTTP client {ttft['bare_http_ttft_p50_ms']} ms; "
                     f"server's own prompt time {ttft['server_prompt_ms_p50']} ms"))
    print(f"machine: {os.cpu_count()} cpus, Python {platform.python_version()}, {platform.platform()}\n")
    print("| measure | time | ratio |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
