"""Searches and chats while an ingest runs in another process (issue 14's target: no "busy", chat
p95 <= 5 s on 2 cores). Never a timed unit test: run it by hand, on a quiet machine.

    .venv/bin/python evals/concurrency.py [--corpus ../shared/benchmarks/scifact/corpus.jsonl]
                                          [--papers 2000] [--chats 20] [--searches 20] [--json out.json]

In a throwaway data dir, with the packaged MiniLM:
  1. `rag ingest seeds/` (the collection people ask about);
  2. starts `rag ingest` of the first N abstracts of the corpus in another process, and waits until
     it has committed its first batch (it is then embedding, most of its run);
  3. C chat sessions asked at once through the UI's own handler (`rag.ui.App.chat`, the extractive
     backend, two at a time as `rag ui --concurrency 2` answers them); then S one-shot `rag search`
     processes started at once; then both together;
  4. checks the ingest was still running when the last of them finished, then lets it finish.
The same chats and searches are first run with no ingest going: the baseline of the same run.
Reports per-chat latency (from pressing Ask to the last token, queueing included) p50/p95/max, one-shot
search latency, and how many of either met "index busy" or another error.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [  # about seed papers, as users type them
    "What does LoRA-GA align at the first step?", "How much activation memory does GACT save?",
    "What is QuantMCU?", "Which benchmark measures moral values of LLMs?", "How is the implanted antenna evaluated?",
    "What does AsCAN combine?", "How fast does LoRA-GA converge?", "What is class-incremental learning used for?",
    "Which model plays chess with categorical values?", "How are personas used for dialogue generation?",
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else float("nan")


def summary(latencies: list[float], failures: list[str]) -> dict:
    return {"n": len(latencies) + len(failures), "p50_s": pct(latencies, 0.5), "p95_s": pct(latencies, 0.95),
            "max_s": round(max(latencies), 2) if latencies else None,
            "busy": sum("busy" in f for f in failures), "other_errors": [f for f in failures if "busy" not in f]}


def run_chats(app, n: int, concurrency: int = 2) -> dict:
    """`n` users press Ask at the same moment; the UI answers `concurrency` at a time (its queue), so
    each latency runs from that moment to the last token: queueing included, as the user waits."""
    def chat(i: int, asked: float) -> tuple[float, str | None]:
        shown = ""
        for update in app.chat(QUESTIONS[i % len(QUESTIONS)], [], "extractive", "", "", "", "", 5):
            turns = update[2]
            shown = turns[-1][2] if isinstance(turns, list) and turns else shown
        error = shown if "rag-error" in shown or "busy" in shown.lower() else None
        return time.perf_counter() - asked, error

    asked = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = [f.result() for f in [pool.submit(chat, i, asked) for i in range(n)]]
    return summary([t for t, e in results if e is None], [e for _, e in results if e])


def run_searches(env: dict, n: int) -> dict:
    def one(i: int) -> tuple[float, str | None]:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "rag.cli", "search", QUESTIONS[i % len(QUESTIONS)], "-k", "5"],
                                env=env, cwd=ROOT, capture_output=True, text=True)
        error = result.stderr.strip().splitlines()[-1] if result.returncode else None
        return time.perf_counter() - started, error

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    return summary([t for t, e in results if e is None], [e for _, e in results if e])


def at_once(app, env: dict, args) -> dict:
    """The chats and the one-shot searches together: 20 Python processes starting on 2 cores compete
    with the UI for the CPU, whatever the index does."""
    together: dict = {}
    thread = threading.Thread(target=lambda: together.update(chats=run_chats(app, args.chats)))
    thread.start()
    together["searches"] = run_searches(env, args.searches)
    thread.join()
    return together


def ingest_child(argv: list[str]) -> None:
    """`rag ingest`, timing how long each of its writes waited for the lock (printed at exit): the
    measure of whether searches hold writes back, apart from the CPU they take."""
    import atexit
    import contextlib

    import rag.ingestion as ingestion

    waits: list[float] = []
    real = ingestion.locked

    @contextlib.contextmanager
    def timed(*args, **kwargs):
        asked = time.perf_counter()
        with real(*args, **kwargs):
            waits.append(time.perf_counter() - asked)
            yield

    ingestion.locked = timed
    atexit.register(lambda: print(json.dumps({"write_lock_waits": len(waits), "total_s": round(sum(waits), 3),
                                              "max_s": round(max(waits, default=0), 3)}), file=sys.stderr))
    sys.argv = ["rag", "ingest", *argv]
    from rag.cli import main

    main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl")
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from rag.ingestion import ingest
    from rag.settings import Settings
    from rag.store import status

    work = Path(tempfile.mkdtemp(prefix="rag-concurrency-"))
    data = work / "data"
    env = {**os.environ, "RAG_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    for key in ("RAG_EMBEDDER", "RAG_REFUSE_BELOW"):
        env.pop(key, None)
    settings = Settings(data_dir=data)
    started = time.perf_counter()
    ingest([ROOT / "seeds"], settings)
    print(f"seeds indexed in {time.perf_counter() - started:.0f} s", flush=True)

    corpus = work / "corpus.jsonl"
    with open(args.corpus) as src, open(corpus, "w") as out:
        for i, line in enumerate(src):
            if i >= args.papers:
                break
            out.write(line)

    from rag.ui import App

    app = App(settings)
    app.retriever()  # opened at start-up, as `rag ui` does on its first request
    results: dict = {"papers_ingested": args.papers, "cpus": os.cpu_count()}
    results["baseline"] = {"chats": run_chats(app, args.chats), "searches": run_searches(env, args.searches),
                           "chats_and_searches_at_once": at_once(app, env, args)}
    print("baseline, no ingest:", json.dumps(results["baseline"]), flush=True)

    before = status(settings)["papers"]
    ingest_started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--ingest-child", str(corpus)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while status(settings)["papers"] == before:  # its first commit: from now on it mostly embeds
        if proc.poll() is not None:
            sys.exit(f"the ingest ended early: {proc.stderr.read()[-500:]}")
        time.sleep(0.5)
    print(f"ingest committed its first batch after {time.perf_counter() - ingest_started:.0f} s; load starts",
          flush=True)

    # The ingest's commits during the load, sampled each second: a write starved by searches would
    # show as a long gap (the CPU they take slows its embedding too, so gaps grow either way).
    samples: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            samples.append((time.perf_counter(), status(settings)["papers"]))

    sampler = threading.Thread(target=sample)
    sampler.start()
    load_started = time.perf_counter()
    during: dict = {"chats": run_chats(app, args.chats), "searches": run_searches(env, args.searches),
                    "chats_and_searches_at_once": at_once(app, env, args)}
    sampling.set()
    sampler.join()
    commits = [t for (t, n), (_, before_n) in zip(samples[1:], samples) if n != before_n]
    during["load_seconds"] = round(time.perf_counter() - load_started, 1)
    during["ingest_commits_during_load"] = len(commits)
    during["longest_gap_between_commits_s"] = round(max(
        (b - a for a, b in zip([load_started, *commits], [*commits, time.perf_counter()])), default=0), 1)
    results["during_ingest"] = during
    results["ingest_running_throughout"] = proc.poll() is None
    results["papers_when_load_ended"] = status(settings)["papers"]
    print("during the ingest:", json.dumps(during), flush=True)
    _, stderr = proc.communicate()
    results["ingest_exit"] = proc.returncode
    lines = [line for line in stderr.splitlines() if line.startswith('{"write_lock_waits"')]
    results["ingest_write_lock_waits"] = json.loads(lines[-1]) if lines else None
    results["ingest_seconds"] = round(time.perf_counter() - ingest_started, 1)
    results["papers_after"] = status(settings)["papers"]
    if proc.returncode:
        results["ingest_error"] = stderr[-500:]
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ingest-child"]:
        ingest_child(sys.argv[2:])
    else:
        main()
